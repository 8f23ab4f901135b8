"""Results of a sweep as the paper shows them: ``python -m aidpose.report PATH... [--out DIR]``.

Collect run folders (``runs``) → group by configuration and aggregate over seeds (``summary``) → Markdown table,
``report.json`` and figures (``plots``).
"""

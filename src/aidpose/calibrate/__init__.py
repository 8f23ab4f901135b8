"""Dropper calibration (``python -m aidpose.calibrate``): match droppers' initial training losses.

:mod:`~aidpose.calibrate.search` holds the pure search and the dropper-config helpers,
:mod:`~aidpose.calibrate.measure` the initial-loss measurement, ``__main__`` the Hydra app.
"""

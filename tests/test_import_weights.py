"""Released weights: every reference network of tests/data/interop imports and computes what the reference
computed, the imported checkpoints work with every command, and every mismatch is an error that says why.

The fixtures were written by ``scripts/make_interop_fixtures.py`` with mmpose 1.3.2, UDP-Pose (mmpose 0.9),
deep-high-resolution-net and HigherHRNet; none of them is needed here.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from omegaconf import open_dict

from aidpose.builders import build_codec, build_module, config_from_checkpoint, load_module_from_checkpoint
from aidpose.import_weights import main as import_main
from aidpose.training.checkpoints import load_weights_only, read_checkpoint
from aidpose.weights import FORMATS, detect_format, import_weights, load_model, read_source, write_checkpoint
from aidpose.weights.formats import IMAGENET_RGB
from aidpose.weights.importer import grouped, match_tensors
from tests.helpers import REPO_ROOT, compose_config, run_cli

INTEROP = REPO_ROOT / "tests" / "data" / "interop"
FIXTURES = sorted(p.name for p in INTEROP.iterdir() if p.is_dir())
IMAGE_LEVEL = json.loads((INTEROP / "mmpose_topdown_coco_mini.json").read_text())


def fixture_meta(name: str) -> dict:
    return json.loads((INTEROP / name / "meta.json").read_text())


def build(overrides: list[str], tmp_path: Path) -> torch.nn.Module:
    cfg = compose_config(overrides, tmp_path)
    return build_module(cfg, build_codec(cfg)).eval()


def as_list(outputs: object) -> list[torch.Tensor]:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def test_every_model_family_has_a_fixture():
    formats = {fixture_meta(n)["format"] for n in FIXTURES}
    assert formats == {"mmpose", "mmpose0", "hrnet"}
    families = {"mmpose_hrnet", "mmpose_resnet", "mmpose_rsn", "mmpose0_higherhrnet", "hrnet_higherhrnet"}
    assert families <= set(FIXTURES)
    size = sum(f.stat().st_size for f in INTEROP.rglob("*") if f.is_file())
    assert size < 5e6  # a few MB in all


@pytest.mark.parametrize("name", FIXTURES)
def test_reference_network_imports_and_computes_the_reference_outputs(name, tmp_path):
    meta = fixture_meta(name)
    module = build(meta["overrides"], tmp_path)
    report = import_weights(module, INTEROP / name / "source.pth")
    assert report.format == meta["format"] and not report.partial and not report.counters_reset
    assert len(report.loaded) == len(read_source(INTEROP / name / "source.pth")[0])
    expected = torch.load(INTEROP / name / "expected.pt", weights_only=True)
    images = expected["input"]
    assert images.dtype == torch.uint8 and images.shape[1] == 3
    # the mapping, exactly: float64, input normalised with the config's own mean/std (these random networks
    # amplify float32 rounding to ~1e-5, see the fixture script)
    mean, std = (
        torch.tensor(module.run_config["paradigm"]["module"][k], dtype=torch.float64) for k in ("mean", "std")
    )
    with torch.no_grad():
        float64 = as_list(
            module.double().net((images.double() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
        )
        float32 = as_list(module.float()(images))  # the module's own path: uint8 RGB → normalised → network
    assert len(float64) == len(expected["outputs"])
    for ours, ref in zip(float64, expected["outputs"], strict=True):
        assert ours.shape == ref.shape
        assert (ours - ref.double()).abs().max() < 1e-5
    for ours, ref in zip(float32, expected["outputs"], strict=True):
        assert (ours - ref).abs().max() < 10 * meta["float32_noise"] + 1e-5


def test_hrnet_fusions_the_head_never_reads_are_reported_not_missing(tmp_path):
    module = build(fixture_meta("mmpose_hrnet")["overrides"], tmp_path)
    report = import_weights(module, INTEROP / "mmpose_hrnet" / "source.pth")
    # timm computes all four branches in HRNet's last module, mmpose only the one the head reads
    assert report.off_path and all(".stage4.1.fuse_layers." in n for n in report.off_path)
    assert not any(p.requires_grad for n, p in module.named_parameters() if n in report.off_path)
    lines = "\n".join(report.lines())
    assert "format mmpose, 464 tensors loaded" in lines and "RGB, mean [123.675, 116.28, 103.53]" in lines
    assert "off the output path" in lines and "fuse_layers.1" in lines


LAYOUTS = json.loads(gzip.decompress((INTEROP / "layouts.json.gz").read_bytes()))
# the full-size models compose with their own overrides; these keep the start-up size check fast
SMALL_INPUT = {"topdown": [], "bottomup": ["paradigm.input_size=[128,128]"]}
_MODULES: dict[tuple[str, ...], torch.nn.Module] = {}


def full_size_module(overrides: list[str], tmp_path: Path) -> torch.nn.Module:
    """The model of ``overrides`` (built once per set of overrides in this test session)."""
    paradigm = "bottomup" if any("higherhrnet" in o for o in overrides) else "topdown"
    key = (*overrides, *SMALL_INPUT[paradigm])
    if key not in _MODULES:
        _MODULES[key] = build(list(key), tmp_path)
    return _MODULES[key]


def layout_tensors(name: str) -> dict[str, torch.Tensor]:
    """The tensors of a full-size layout as shapes only (meta device)."""
    return {k: torch.empty(v, device="meta") for k, v in LAYOUTS[name]["tensors"].items()}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["mmpose_hrnet_w32", "mmpose_hrnet_w48", "hrnet_w48", "mmpose_resnet50", "mmpose_rsn50_x2",
             "udp_higherhrnet_w32", "udp_higherhrnet_w48", "higherhrnet_w48"],
)  # fmt: skip
def test_full_size_models_correspond_one_to_one(name, tmp_path):
    layout = LAYOUTS[name]
    module = full_size_module(layout["overrides"], tmp_path)
    report = match_tensors(module, layout_tensors(name), FORMATS[layout["format"]], IMAGENET_RGB, name)
    assert len(report.loaded) == len(layout["tensors"]) and not report.partial
    # HRNet: the fusions the head never reads; ResNet and RSN use every tensor
    assert len(report.off_path) == (0 if "resnet" in name or "rsn" in name else 78)


@pytest.mark.slow
def test_backbone_only_files_need_allow_partial(tmp_path):
    module = full_size_module(["backbone=hrnet_w32"], tmp_path)
    report = match_tensors(
        module, layout_tensors("mmpose_hrnet_w32_backbone"), FORMATS["backbone"], IMAGENET_RGB, "x"
    )
    assert report.partial and report.kept_at_init == ["net.head.final.weight", "net.head.final.bias"]
    assert len(report.loaded) == 1752 and not report.unused


@pytest.mark.slow
def test_shape_mismatches_name_the_tensor_both_shapes_and_the_cause(tmp_path):
    w32 = full_size_module(["backbone=hrnet_w32"], tmp_path)
    with pytest.raises(ValueError, match=r"1386 tensors differ in shape:\n  backbone\.transition1\.0\.0\.weight "
                       r"\(48, 256, 3, 3\) → net\.backbone\.body\.transition1\.0\.0\.weight \(32, 256, 3, 3\): "
                       r"backbone width: the source looks like HRNet-W48; the model is backbone=hrnet_w32"):  # fmt: skip
        match_tensors(w32, layout_tensors("mmpose_hrnet_w48"), FORMATS["mmpose"], IMAGENET_RGB, "w48.pth")
    # the UDP-Pose authors' own UDP models predict label + offset maps (CombinedTarget): a Gaussian head does not fit
    with pytest.raises(ValueError, match=r"keypoint_head\.final_layer\.weight \(51, 32, 1, 1\) → net\.head\.final\."
                       r"weight \(17, 32, 1, 1\): the source predicts 51 = 3×17 maps: a UDP CombinedTarget"):  # fmt: skip
        match_tensors(
            w32, layout_tensors("udp_hrnet_w32_combined"), FORMATS["mmpose0"], IMAGENET_RGB, "udp.pth"
        )
    report = match_tensors(
        w32, layout_tensors("udp_hrnet_w32_combined"), FORMATS["backbone"], IMAGENET_RGB, "udp"
    )
    assert report.unused == ["keypoint_head.final_layer.bias", "keypoint_head.final_layer.weight"]
    assert len(report.loaded) == 1752 and len(report.kept_at_init) == 2
    # with the combined-target codec the whole UDP model fits (its 51-map head included)
    combined = full_size_module(["backbone=hrnet_w32", "paradigm/codec=udp_combined"], tmp_path)
    report = match_tensors(
        combined, layout_tensors("udp_hrnet_w32_combined"), FORMATS["mmpose0"], IMAGENET_RGB, "udp.pth"
    )
    assert len(report.loaded) == 1754 and not report.partial
    # the W48 HigherHRNet head is 48 channels wide (HigherHRNet's w48_640 config): a 32-wide one does not fit
    narrow = full_size_module(
        ["experiment=coco_higherhrnet_w48_640", "paradigm.head.deconv_channels=32"], tmp_path
    )
    with pytest.raises(ValueError, match=r"final_layers\.1\.weight \(17, 48, 1, 1\) → net\.head\.final_half\.weight "
                       r"\(17, 32, 1, 1\): head width.*paradigm\.head\.deconv_channels"):  # fmt: skip
        match_tensors(narrow, layout_tensors("higherhrnet_w48"), FORMATS["hrnet"], IMAGENET_RGB, "w48.pth")


def test_joint_count_mismatch_says_so(tmp_path):
    module = build([*fixture_meta("mmpose_hrnet")["overrides"], "dataset=crowdpose"], tmp_path)
    with pytest.raises(ValueError, match=r"head\.final_layer\.weight \(17, 4, 1, 1\) → net\.head\.final\.weight "
                       r"\(14, 4, 1, 1\): joint count: the source predicts 17 maps, the model 14"):  # fmt: skip
        import_weights(module, INTEROP / "mmpose_hrnet" / "source.pth")


def test_partial_imports_need_allow_partial_and_list_what_differs(tmp_path):
    source = INTEROP / "mmpose0_higherhrnet" / "source.pth"
    module = build(
        [*fixture_meta("mmpose0_higherhrnet")["overrides"], "paradigm.head.num_basic_blocks=3"], tmp_path
    )
    with pytest.raises(ValueError, match=r"(?s)12 source tensors unused: keypoint_head\.deconv_layers\.0\.4\.0.*"
                       r"--allow-partial"):  # fmt: skip
        import_weights(module, source)
    # the backbone of a full model, as UDP-Pose's `pretrained=` loads it: the head stays at its initial values
    module = build(fixture_meta("mmpose0_higherhrnet")["overrides"], tmp_path)
    head = {k: v.clone() for k, v in module.state_dict().items() if k.startswith("net.head.")}
    report = import_weights(module, source, "backbone", allow_partial=True)
    assert report.format == "backbone" and all(u.startswith("keypoint_head.") for u in report.unused)
    assert sorted(report.kept_at_init + report.counters_reset) == sorted(head)
    assert all(torch.equal(module.state_dict()[k], v) for k, v in head.items())
    assert "kept at their initial values: net.head" in "\n".join(report.lines())


def test_input_convention_is_checked_and_stored(tmp_path):
    overrides = fixture_meta("mmpose_hrnet")["overrides"]
    module = build([*overrides, "paradigm.module.mean=[0,0,0]", "paradigm.module.std=[1,1,1]"], tmp_path)
    with pytest.raises(ValueError, match=r"RGB input with mean \[123\.675, 116\.28, 103\.53\].*"
                       r"paradigm\.module\.mean=\[0\.0, 0\.0, 0\.0\].*Set paradigm\.module\.mean=\[123\.675"):  # fmt: skip
        import_weights(module, INTEROP / "mmpose_hrnet" / "source.pth")
    module = build(overrides, tmp_path)
    report = import_weights(module, INTEROP / "mmpose_hrnet" / "source.pth")
    path = write_checkpoint(module, report, tmp_path / "out.ckpt")
    stored = read_checkpoint(path)["aidpose_import"]
    assert stored["input"] == {
        "channel_order": "RGB",
        "mean": [123.675, 116.28, 103.53],
        "std": [58.395, 57.12, 57.375],
    }
    assert stored["format"] == "mmpose" and stored["loaded"] == 464 and stored["kept_at_init"] == []


def test_formats_are_detected_from_tensor_names():
    assert detect_format(["net.backbone.body.conv1.weight"]).name == "aidpose"
    assert detect_format(["backbone.conv1.weight", "head.final_layer.weight"]).name == "mmpose"
    assert detect_format(["backbone.conv1.weight", "keypoint_head.final_layer.weight"]).name == "mmpose0"
    assert (
        detect_format(["conv1.weight", "final_layers.0.weight", "deconv_layers.0.0.0.weight"]).name == "hrnet"
    )
    assert detect_format(["conv1.weight", "final_layer.weight"]).name == "hrnet"
    # classification backbones: timm's HRNet also has a final_layer, next to its classifier
    assert (
        detect_format(["conv1.weight", "incre_modules.0.0.conv1.weight", "final_layer.0.weight"]).name
        == "backbone"
    )
    assert detect_format(["conv1.weight", "fc.weight"]).name == "backbone"
    with pytest.raises(ValueError, match="no tensors"):
        detect_format([])
    assert grouped(["a.b.w", "a.b.b", "c.w"]) == "a.b (2), c (1)"


def test_files_are_read_safely(tmp_path):
    tensors, others = read_source(INTEROP / "mmpose_hrnet" / "source.pth")
    assert isinstance(others["meta"]["dataset_meta"]["sigmas"], np.ndarray)  # numpy arrays are data: allowed
    torch.save(OrderedDict((f"module.{k}", v) for k, v in list(tensors.items())[:3]), tmp_path / "dp.pth")
    assert list(read_source(tmp_path / "dp.pth")[0]) == list(tensors)[:3]  # DataParallel's prefix dropped
    # a file pickled under numpy 1.x names numpy.core.multiarray (numpy 2: numpy._core.multiarray)
    torch.save({"meta": {"sigmas": np.ones(3)}, "state_dict": {"w": torch.ones(1)}}, tmp_path / "np2.pth")
    with zipfile.ZipFile(tmp_path / "np2.pth") as src, zipfile.ZipFile(tmp_path / "np1.pth", "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(info, data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert read_source(tmp_path / "np1.pth")[1]["meta"]["sigmas"].tolist() == [1.0, 1.0, 1.0]
    torch.save({"state_dict": {}, "where": tmp_path}, tmp_path / "code.pth")  # a Path object: not plain data
    with pytest.raises(ValueError, match=r"pickled Python objects.*never unpickles code"):
        read_source(tmp_path / "code.pth")
    with pytest.raises(FileNotFoundError, match="no such weight file"):
        read_source(tmp_path / "absent.pth")
    with pytest.raises(ValueError, match="--format keras: unknown"):
        import_weights(torch.nn.Module(), INTEROP / "mmpose_hrnet" / "source.pth", "keras")


def test_timm_and_torchvision_backbones_import_with_their_classifiers_listed(tmp_path):
    import torchvision

    module = build(["backbone=resnet18", "head.deconv_channels=8"], tmp_path)
    classifier = torchvision.models.resnet18().eval()
    torch.save(classifier.state_dict(), tmp_path / "torchvision.pth")
    report = import_weights(module, tmp_path / "torchvision.pth", allow_partial=True)
    assert report.format == "backbone" and report.unused == ["fc.bias", "fc.weight"]
    x = torch.randn(1, 3, 64, 64)
    features = torch.nn.Sequential(*list(classifier.children())[:-2])  # up to layer4
    with torch.no_grad():
        assert torch.allclose(module.net.backbone(x), features(x), atol=1e-5)
    resnet = ["backbone=resnet50", "backbone.model_args={channels:[4,8,16,32]}", "head.deconv_channels=8"]
    module = build(resnet, tmp_path)
    classifier = timm.create_model("resnet50", channels=(4, 8, 16, 32), num_classes=10).eval()
    torch.save(classifier.state_dict(), tmp_path / "timm.pth")
    report = import_weights(module, tmp_path / "timm.pth", allow_partial=True)
    assert report.format == "backbone" and report.unused == ["fc.bias", "fc.weight"]
    assert {n.rsplit(".", 1)[0] for n in report.kept_at_init} == {
        f"net.head.deconv.{i}" for i in (0, 1, 3, 4, 6, 7)
    } | {"net.head.final"}
    with torch.no_grad():
        assert torch.allclose(module.net.backbone(x), classifier.forward_features(x), atol=1e-5)
    hrnet = ["backbone=hrnet_w18_small"]
    module = build(hrnet, tmp_path)
    classifier = timm.create_model("hrnet_w18_small", num_classes=10).eval()
    torch.save(classifier.state_dict(), tmp_path / "hrnet.pth")
    report = import_weights(module, tmp_path / "hrnet.pth", allow_partial=True)
    assert {u.split(".")[0] for u in report.unused} == {
        "incre_modules",
        "downsamp_modules",
        "final_layer",
        "classifier",
    }
    assert not report.off_path  # timm's classifier computes every branch: the fusions come with the file


def test_aidpose_checkpoints_reimport_and_load(tmp_path):
    meta = fixture_meta("mmpose_resnet")
    module = build(meta["overrides"], tmp_path)
    path = write_checkpoint(
        module, import_weights(module, INTEROP / "mmpose_resnet" / "source.pth"), tmp_path / "a.ckpt"
    )
    again = build(meta["overrides"], tmp_path)
    report = import_weights(again, path)
    assert report.format == "aidpose" and not report.partial and report.convention == IMAGENET_RGB
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in again.state_dict().items())
    # aidpose.load_model: eval mode, the module evaluate builds, the reference outputs on a uint8 batch
    loaded = load_model(path)
    assert not loaded.training and loaded.codec.input_size == module.codec.input_size
    ckpt = read_checkpoint(path)
    cfg = compose_config([], tmp_path, config_name="evaluate")
    evaluated = load_module_from_checkpoint(config_from_checkpoint(ckpt, cfg, str(path)), ckpt, str(path))
    expected = torch.load(INTEROP / "mmpose_resnet" / "expected.pt", weights_only=True)
    with torch.no_grad():
        heatmaps = loaded(expected["input"])
        assert torch.equal(heatmaps, evaluated(expected["input"]))
    assert (heatmaps - expected["outputs"][0]).abs().max() < 1e-4
    # train init_weights=: the same weights-only load aidpose.train runs
    fresh = build(meta["overrides"], tmp_path)
    load_weights_only(fresh, path)
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in fresh.state_dict().items())


@pytest.fixture(scope="module")
def imported_checkpoint(tmp_path_factory, coco_dataset_args, coco_mini) -> Path:
    """The mmpose fixture through ``python -m aidpose.import_weights`` at 256×192 on the coco_mini dataset."""
    root = tmp_path_factory.mktemp("imported")
    out = root / "mmpose_hrnet.ckpt"
    overrides = [*IMAGE_LEVEL["overrides"], *coco_dataset_args(coco_mini)]
    proc = run_cli(
        "aidpose.import_weights", str(INTEROP / IMAGE_LEVEL["source"]), str(out), *overrides, cwd=root
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "format mmpose, 464 tensors loaded" in proc.stdout and f"wrote {out}" in proc.stdout
    return out


@pytest.mark.slow
def test_predict_gives_mmposes_keypoints_on_the_coco_photos(imported_checkpoint, coco_mini, tmp_path):
    (tmp_path / "boxes.json").write_text(json.dumps(IMAGE_LEVEL["boxes_xywh"]))
    proc = run_cli(
        "aidpose.predict", f"ckpt_path={imported_checkpoint}", f"input={coco_mini}", f"output={tmp_path / 'out'}",
        f"boxes={tmp_path / 'boxes.json'}", "test.nms=none", "draw=false", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    predictions = json.loads((tmp_path / "out" / "predictions.json").read_text())
    unstable = {tuple(u) for u in IMAGE_LEVEL["unstable_joints"]}
    distances = []
    for file_name, people in IMAGE_LEVEL["keypoints"].items():
        ours = [
            np.array(p["keypoints"]).reshape(-1, 3)[:, :2] for p in predictions if p["file_name"] == file_name
        ]
        assert len(ours) == len(people)
        for person, reference in enumerate(np.array(people)[..., :2]):
            stable = [k for k in range(len(reference)) if (file_name, person, k) not in unstable]
            match = min(ours, key=lambda o: np.median(np.abs(o[stable] - reference[stable])))
            distances += list(np.linalg.norm(match[stable] - reference[stable], axis=1))
    assert len(distances) >= 190  # of 204 joints, those where the random reference is well defined
    assert max(distances) < 0.05


@pytest.mark.slow
def test_evaluate_reads_the_imported_checkpoint(imported_checkpoint, coco_dataset_args, coco_mini, tmp_path):
    from tests.conftest import run_evaluate

    run_dir = run_evaluate(tmp_path, imported_checkpoint)
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["dataset"] == "coco" and summary["num_results"] > 0 and "AP" in summary["metrics"]
    assert summary["codec"]["input_size"] == [192, 256]


def test_cli_refuses_what_it_cannot_import(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no such weight file"):
        import_main([str(tmp_path / "absent.pth"), str(tmp_path / "out.ckpt")])
    with pytest.raises(SystemExit):
        import_main(
            [str(INTEROP / "mmpose_hrnet" / "source.pth"), str(tmp_path / "out.ckpt"), "--format", "keras"]
        )
    assert "invalid choice: 'keras'" in capsys.readouterr().err
    source = str(INTEROP / "mmpose0_hrnet" / "source.pth")
    with pytest.raises(SystemExit, match=r"(?s)model tensors kept at their initial values.*--allow-partial"):
        import_main(
            [
                source,
                str(tmp_path / "out.ckpt"),
                *fixture_meta("mmpose0_hrnet")["overrides"],
                "--format",
                "backbone",
            ]
        )
    assert not (tmp_path / "out.ckpt").exists()


def test_config_chooses_the_architecture(tmp_path):
    cfg = compose_config(fixture_meta("hrnet_hrnet")["overrides"], tmp_path)
    with open_dict(cfg):
        cfg.backbone.model_args.stage1.num_blocks = [3]  # the HRNet repository's stage 1 has 4 bottlenecks
    module = build_module(cfg, build_codec(cfg))
    with pytest.raises(ValueError, match=r"(?s)18 source tensors unused: layer1\.3\..*looks like HRNet-W4"):
        import_weights(module, INTEROP / "hrnet_hrnet" / "source.pth")

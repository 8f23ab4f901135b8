"""The experiment configs: the paper's table rows on COCO and their SynthPose grids compose to the right setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from aidpose.aid.masks import relative_to_pixels
from aidpose.builders import build_codec, build_dropper, build_schedule
from aidpose.codecs import MegviiHeatmapCodec, UDPCombinedCodec, UDPHeatmapCodec
from tests.helpers import CONF_DIR, compose_config

EXPERIMENTS = CONF_DIR / "experiment"
DETECTIONS = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"

# Table 1/4 rows: experiment → (timm backbone, input (w, h), heatmap (w, h)); every one on the paper's UDP
# combined target (radius factor 0.0546875, the authors' decoding blurs 15 and 7)
ROWS = {
    "coco/resnet50_256x192": ("resnet50", [192, 256], [48, 64]),
    "coco/resnet50_384x288": ("resnet50", [288, 384], [72, 96]),
    "coco/hrnet_w32_256x192": ("hrnet_w32", [192, 256], [48, 64]),
    "coco/hrnet_w32_384x288": ("hrnet_w32", [288, 384], [72, 96]),
    "coco/hrnet_w48_256x192": ("hrnet_w48", [192, 256], [48, 64]),
    "coco/hrnet_w48_384x288": ("hrnet_w48", [288, 384], [72, 96]),
}
# RSN rows: experiment → (backbone, kernel sizes, level indices) of mmpose 1.x's configs
RSN_ROWS = {
    "coco/rsn50_256x192": ("rsn50", (11, 9, 7, 5), (0, 1, 2, 3)),
    "coco/rsn50_x2_256x192": ("rsn50_x2", (15, 11, 9, 7, 5), (0, 1, 2, 3, 1, 2, 3, 4)),
}
# Table 5 rows: experiment → (schedule, dropper)
TABLE5 = {
    "coco/table5_e1": ("s1", "none"),
    "coco/table5_e2": ("s1", "cutout"),
    "coco/table5_e3": ("s2", "none"),
    "coco/table5_e4": ("s2", "cutout"),
    "coco/table5_e5": ("s3", "cutout"),
}


def defaults_of(experiment: str) -> list:
    """The defaults list of ``conf/experiment/<experiment>.yaml`` as written."""
    return yaml.safe_load((EXPERIMENTS / f"{experiment}.yaml").read_text())["defaults"]


def assert_paper_setting(cfg, backbone: str, boxes: str = "detections") -> None:
    """ImageNet-pretrained backbone, COCO, GPU, flip test on the standard detector boxes (Table 5: on
    ground-truth boxes, as the paper reports it)."""
    assert cfg.backbone.name == backbone and cfg.backbone.pretrained is True and cfg.backbone.weights is None
    assert cfg.dataset.name == "coco" and cfg.trainer.accelerator == "gpu"
    assert cfg.test.flip is True and cfg.test.boxes == boxes
    assert cfg.test.det_file == (f"{cfg.dataset.source.root}/{DETECTIONS}" if boxes == "detections" else None)


# the CPU defaults per paradigm and the bottom-up settings (tested in test_config, test_bottomup_module)
DEFAULTS_AND_BOTTOMUP = {
    "synthpose_cpu", "synthpose_cpu_topdown", "synthpose_cpu_bottomup",
    "crowdpose_higherhrnet_w32_512",
}  # fmt: skip
# bottom-up paper settings tested here: experiment → (dataset, timm backbone, input side, test scales)
BOTTOMUP_ROWS = {
    "coco_higherhrnet_w48_640": ("coco", "hrnet_w48", 640, [1.0]),
    "crowdpose_higherhrnet_w48_640": ("crowdpose", "hrnet_w48", 640, [1.0]),
    "crowdpose_higherhrnet_w48_640_multiscale": ("crowdpose", "hrnet_w48", 640, [0.5, 1.0, 2.0]),
    "coco_higherhrnet_w32_512": ("coco", "hrnet_w32", 512, [1.0]),
}


# the AID authors' released recipes (UDP-Pose, branch mmpose), fine-tuning an imported UDP model
RELEASED = {"coco/aid_release_hrnet_w32_256x192", "coco/aid_release_higherhrnet_w32_512"}
# Table 2's "with AI Challenger data" row, run with the closest public model (HRNet-W48 384×288)
AIC_ROWS = {"coco/hrnet_w48_384x288_aic": "coco/hrnet_w48_384x288"}


def test_every_experiment_file_is_tested():
    files = {str(p.relative_to(EXPERIMENTS).with_suffix("")) for p in EXPERIMENTS.rglob("*.yaml")}
    grids = {"coco/table4", "coco/table4_bottomup", "coco/table5", "synthpose/table4", "synthpose/table5"}
    assert files == {
        *DEFAULTS_AND_BOTTOMUP,
        *BOTTOMUP_ROWS,
        *ROWS,
        *RSN_ROWS,
        *TABLE5,
        *grids,
        *RELEASED,
        *AIC_ROWS,
    }


def assert_combined_target(cfg, heatmap_size: list[int]) -> None:
    """The paper's UDP v1 target: label disc of radius factor 0.0546875 plus offsets, the authors' decoding."""
    codec = build_codec(cfg)
    assert isinstance(codec, UDPCombinedCodec) and codec.heatmap_size == tuple(heatmap_size)
    assert (codec.radius_factor, codec.blur_kernel, codec.offset_blur_kernel) == (0.0546875, 15, 7)
    assert cfg.paradigm.loss._target_.endswith("CombinedTargetMSELoss")


@pytest.mark.parametrize("experiment", sorted(AIC_ROWS))
def test_the_row_with_ai_challenger_data_is_its_coco_row_on_the_mix(experiment, tmp_path):
    options = ["dropper=cutout", "schedule=s2"]
    cfg = compose_config([f"experiment={experiment}", *options], tmp_path)
    coco = compose_config([f"experiment={AIC_ROWS[experiment]}", *options], tmp_path)
    assert (cfg.dataset.name, cfg.dataset.layout, cfg.dataset.metric) == ("coco_aic", "coco", "coco")
    # the same model, input, target, schedule, dropper and detector boxes as the row without AIC
    for key in ("paradigm", "backbone", "head", "schedule", "dropper", "test"):
        assert cfg[key] == coco[key], key
    # COCO's train and val files; AIC's training people added once per epoch (mmpose's merge config)
    source = cfg.dataset.source
    assert {k: source[k] for k in coco.dataset.source if k != "_target_"} == {
        k: v for k, v in coco.dataset.source.items() if k != "_target_"
    }
    assert (source.ratio, source.extra.aic.ratio) == (1.0, 1.0)
    assert source.extra.aic.train_ann == "annotations/aic_train.json"


def test_released_aid_recipes_are_the_authors_settings(tmp_path):
    start = ["udp_checkpoint=/w/udp.ckpt"]
    top = compose_config(["experiment=coco/aid_release_hrnet_w32_256x192", *start], tmp_path)
    schedule = build_schedule(top)
    assert (schedule.scaled_epochs, schedule.scaled_milestones, schedule.lr) == (150, [100, 140], 3e-3)
    assert (schedule.warmup_steps, schedule.warmup_ratio) == (500, 0.001)
    assert top.init_weights == "/w/udp.ckpt" and top.backbone.name == "hrnet_w32"
    assert top.backbone.pretrained is False  # the start replaces the ImageNet weights
    assert top.dropper._target_ == "aidpose.aid.Cutout" and top.head._target_ == "aidpose.models.ConvHead"
    assert top.paradigm.input_size == [192, 256] and top.loader.batch_size == 48
    assert_combined_target(top, [48, 64])  # aid.py:29 CombinedTarget
    test = top.test
    assert (test.boxes, test.nms, test.nms_thr, test.kpt_score_thr) == ("detections", "oks", 0.9, 0.2)
    assert top.trainer.check_val_every_n_epoch == 150
    bottom = compose_config(["experiment=coco/aid_release_higherhrnet_w32_512", *start], tmp_path)
    schedule = build_schedule(bottom)
    assert (schedule.scaled_epochs, schedule.scaled_milestones, schedule.lr) == (200, [150, 190], 1e-3)
    assert bottom.paradigm.name == "bottomup" and bottom.dropper._target_ == "aidpose.aid.HideAndSeek"
    head = bottom.paradigm.head
    assert (head.deconv_channels, head.deconv_kernel, head.num_basic_blocks) == (32, 4, 4)
    assert bottom.paradigm.input_size == [512, 512] and bottom.paradigm.loss.push_kind == "exp"
    assert bottom.init_weights == "/w/udp.ckpt" and bottom.loader.batch_size == 12
    # the start is mandatory: without it the recipe would train from scratch
    with pytest.raises(Exception, match="Missing mandatory value: udp_checkpoint"):
        _ = compose_config(["experiment=coco/aid_release_hrnet_w32_256x192"], tmp_path).init_weights


@pytest.mark.parametrize(
    "name",
    ["coco_higherhrnet_w48_640", "crowdpose_higherhrnet_w48_640", "crowdpose_higherhrnet_w48_640_multiscale"],
)
def test_higherhrnet_w48_has_the_reference_head(tmp_path, name):
    cfg = compose_config([f"experiment={name}"], tmp_path)
    assert cfg.paradigm.head.deconv_channels == 48 and cfg.paradigm.head.num_basic_blocks == 4


@pytest.mark.parametrize("experiment", sorted(ROWS))
def test_table1_rows_are_the_papers_setting(experiment, tmp_path):
    backbone, input_size, heatmap = ROWS[experiment]
    cfg = compose_config([f"experiment={experiment}", "dropper=cutout", "schedule=s2"], tmp_path)
    assert_paper_setting(cfg, backbone)
    assert cfg.paradigm.input_size == input_size and build_codec(cfg).input_size == tuple(input_size)
    assert_combined_target(cfg, heatmap)
    gaussian = compose_config([f"experiment={experiment}", "paradigm/codec=udp_heatmap"], tmp_path)
    assert isinstance(build_codec(gaussian), UDPHeatmapCodec)  # UDP v0, one option away
    assert cfg.dropper._target_ == "aidpose.aid.Cutout" and build_schedule(cfg).scaled_epochs == 420
    # the dataset's root moves the detection file with it; offline weights replace the hub download
    cfg = compose_config([f"experiment={experiment}", "dataset.source.root=/data/coco"], tmp_path)
    assert cfg.test.det_file == f"/data/coco/{DETECTIONS}" and cfg.dropper is None
    cfg = compose_config(
        [f"experiment={experiment}", "backbone.pretrained=false", "backbone.weights=/w.pth"], tmp_path
    )
    assert (cfg.backbone.pretrained, cfg.backbone.weights) == (False, "/w.pth")


@pytest.mark.parametrize("experiment", sorted(TABLE5))
def test_table5_rows_name_their_schedule_and_dropper(experiment, tmp_path):
    schedule, dropper = TABLE5[experiment]
    assert defaults_of(experiment) == [
        "/experiment/coco/hrnet_w32_256x192",
        {"override /schedule": schedule},
        {"override /dropper": dropper},
    ]
    cfg = compose_config([f"experiment={experiment}"], tmp_path)
    assert_paper_setting(cfg, "hrnet_w32", boxes="gt")
    assert cfg.paradigm.input_size == [192, 256]
    assert_combined_target(cfg, [48, 64])
    assert (cfg.dropper is None) == (dropper == "none") and cfg.schedule.name == schedule


@pytest.mark.parametrize("experiment", sorted(RSN_ROWS))
def test_rsn_rows_are_mmposes_setting(experiment, tmp_path):
    backbone, kernels, levels = RSN_ROWS[experiment]
    cfg = compose_config([f"experiment={experiment}", "dropper=cutout", "schedule=s2"], tmp_path)
    assert cfg.backbone.name == backbone and cfg.dataset.name == "coco" and cfg.trainer.accelerator == "gpu"
    codec = build_codec(cfg)
    assert isinstance(codec, MegviiHeatmapCodec) and (codec.kernel_sizes, codec.level_indices) == (
        kernels,
        levels,
    )
    assert codec.input_size == (192, 256) and codec.heatmap_size == (48, 64) and codec.blur_kernel == 5
    stages = len(levels) // 4
    assert list(cfg.paradigm.loss.loss_weights) == [0.25, 0.25, 0.25, 1.0] * stages
    assert list(cfg.paradigm.loss.ohkm) == [False, False, False, True] * stages
    schedule = build_schedule(cfg)  # mmpose's Adam 5e-3 at 8 × 32 crops, on the paper's S2 for AID
    assert (schedule.lr, schedule.scaled_epochs, cfg.loader.batch_size) == (5e-3, 420, 32)
    assert (cfg.test.flip, cfg.test.nms, cfg.test.boxes) == (True, "none", "detections")
    assert cfg.test.det_file.endswith(DETECTIONS) and cfg.dropper._target_ == "aidpose.aid.Cutout"


def sweep_jobs(cfg, extra: list[str]) -> list[list[str]]:
    """The jobs Hydra's basic sweeper launches for a composed config's sweep params plus command-line ``extra``."""
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()] + extra
    overrides = OverridesParser.create().parse_overrides(params)
    [batch] = BasicSweeper.split_arguments(overrides, max_batch_size=None)
    return batch


@pytest.mark.parametrize(
    ("experiment", "jobs"),
    [
        ("synthpose/table4", [["dropper=" + d] for d in ("none", "cutout", "random_erasing", "has", "gridmask")]),
        ("coco/table4", [["dropper=" + d] for d in ("none", "cutout", "random_erasing", "has", "gridmask")]),
        ("coco/table4_bottomup", [["dropper=" + d] for d in ("none", "cutout", "has", "gridmask")]),
        ("synthpose/table5", [[f"schedule={s}", f"dropper={d}"] for s in ("s1", "s2", "s3") for d in ("none", "cutout")]),
        ("coco/table5", [[f"schedule={s}", f"dropper={d}"] for s in ("s1", "s2", "s3") for d in ("none", "cutout")]),
    ],
)  # fmt: skip
def test_grids_sweep_the_table(experiment, jobs, tmp_path):
    cfg = compose_config([f"experiment={experiment}"], tmp_path)
    table = experiment.replace("/", "_")
    assert Path(cfg.hydra.sweep.dir).name.startswith(f"{table}_")  # the sweep folder names the table
    assert sweep_jobs(cfg, []) == jobs
    with_seeds = sweep_jobs(cfg, ["seed=0,1"])  # seeds on the command line multiply the grid
    assert len(with_seeds) == 2 * len(jobs) and with_seeds[0] == [*jobs[0], "seed=0"]
    for job in jobs:  # every job composes
        job_cfg = compose_config([f"experiment={experiment}", *job], tmp_path)
        assert job_cfg.hydra.runtime.choices.dropper == job[-1].split("=")[1]
        if experiment.startswith("synthpose"):
            assert job_cfg.dataset.name == "synthpose" and job_cfg.paradigm.input_size == [96, 128]
            assert build_schedule(job_cfg).scaled_epochs in (21, 42)  # ×0.1: S1 21, S2 42
        elif experiment == "coco/table4_bottomup":
            assert job_cfg.paradigm.name == "bottomup" and job_cfg.backbone.name == "hrnet_w32"
            assert job_cfg.paradigm.input_size == [512, 512] and build_schedule(job_cfg).scaled_epochs == 600
        else:
            assert_paper_setting(
                job_cfg, "hrnet_w32", boxes="gt" if experiment == "coco/table5" else "detections"
            )


def test_synthpose_cpu_stays_the_default(tmp_path):
    cfg = compose_config([], tmp_path)
    # train.yaml picks experiment=synthpose_cpu_${paradigm}; the top-down one is synthpose_cpu
    assert cfg.hydra.runtime.choices.experiment == "synthpose_cpu_topdown"
    assert defaults_of("synthpose_cpu_topdown") == ["synthpose_cpu"]
    assert cfg.dataset.name == "synthpose" and cfg.test.boxes == "gt" and cfg.backbone.pretrained is False


@pytest.mark.parametrize("experiment", sorted(BOTTOMUP_ROWS))
def test_bottomup_rows_are_the_papers_setting(experiment, tmp_path):
    dataset, backbone, side, scales = BOTTOMUP_ROWS[experiment]
    cfg = compose_config([f"experiment={experiment}", "dropper=has"], tmp_path)
    assert (cfg.paradigm.name, cfg.dataset.name, cfg.backbone.name) == ("bottomup", dataset, backbone)
    assert cfg.paradigm.input_size == [side, side] and list(cfg.test.scales) == scales
    codec = build_codec(cfg)  # HigherHRNet's multi-scale grouping: the tags of scale 1 only
    assert codec.tags_all_scales is False and list(codec.scales) == scales
    # the official test inputs (multiples of 64 from the smallest scale) and DARK-UDP before filling (UDP-Pose)
    assert (codec.size_divisor, codec.size_rule, codec.dark_before_fill) == (64, "higherhrnet", True)
    # HigherHRNet's and UDP-Pose's schedule: Adam lr 1e-3, 300 epochs, ×0.1 at 200 and 260
    schedule = build_schedule(cfg)
    assert (schedule.scaled_epochs, cfg.schedule.lr, list(cfg.schedule.milestones)) == (300, 1e-3, [200, 260])
    # Hide-and-Seek at the official pixel cell sizes of the input, whatever its side
    has = build_dropper(cfg)
    assert [relative_to_pixels(size, side) for size in has.cell_sizes] == [0, 16, 32, 44]

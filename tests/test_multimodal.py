"""Vision-language families (Qwen2-VL, Qwen2.5-VL): loading, the one resize, the template, the
model inputs, ms-swift's image rows, grounding boxes and what trains. Tiny models built here."""

from __future__ import annotations

import json

import pytest
import torch

from swift_core.errors import SwiftError


@pytest.fixture(scope="module")
def tiny_vl(tmp_path_factory):
    from swift_core.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("vl") / "qwen2_vl", "qwen2_vl")


@pytest.fixture(scope="module")
def prepared(tiny_vl):
    from swift_core.models.loader import prepare_model

    return prepare_model(str(tiny_vl))


@pytest.fixture(scope="module")
def vision(prepared):
    from swift_core.multimodal.setup import vision_setup

    return vision_setup(prepared, max_pixels=56 * 56, min_pixels=56 * 56)


def _square(colour=(200, 20, 20), size=(56, 56)):
    from PIL import Image

    return Image.new("RGB", size, colour)


# --- loading --------------------------------------------------------------------------------


def test_tiny_qwen2_vl_loads_with_the_vision_head_and_its_processor(tiny_vl, prepared, vision):
    from swift_core.models.heads import VISION_LM
    from swift_core.models.loader import load_weights

    assert (tiny_vl / "preprocessor_config.json").is_file()
    assert prepared.family.name == "qwen2_vl" and prepared.head == VISION_LM
    model = load_weights(prepared, "float32")
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    assert vision.processor.image_token_id == prepared.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert vision.codec.name == "qwen2_vl"


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_tiny_vl_families_build_resolve_back_and_answer_with_an_image(family, tmp_path):
    from swift_core.models.loader import load_weights, prepare_model
    from swift_core.models.tiny import build_tiny_model
    from swift_core.multimodal.generate import generate_batch
    from swift_core.multimodal.setup import vision_setup

    folder = build_tiny_model(tmp_path / family, family, vocab_size=800)
    prepared = prepare_model(str(folder))
    assert prepared.family.name == family and prepared.head.name == "vision_lm"
    model = load_weights(prepared, "float32")
    assert type(model).__name__ in prepared.family.architectures
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    vision = vision_setup(prepared, max_pixels=56 * 56)
    row = {"messages": [{"role": "user", "content": "colour?"}], "images": [_square()]}
    (answer,) = generate_batch(
        model, prepared.tokenizer, prepared.template, vision.processor, [row], max_new_tokens=2
    )
    assert isinstance(answer, str)


def test_a_hub_style_preprocessor_config_loads_without_torchvision(tiny_vl, tmp_path):
    """Qwen2-VL-2B-Instruct's preprocessor_config.json as published (min/max_pixels keys, the
    torchvision-backed class name): the Pillow backend is built from it."""
    import shutil

    from swift_core.multimodal.processor import VisionProcessor

    folder = tmp_path / "hub"
    shutil.copytree(tiny_vl, folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "min_pixels": 3136,
                "max_pixels": 12845056,
                "patch_size": 14,
                "temporal_patch_size": 2,
                "merge_size": 2,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
                "image_processor_type": "Qwen2VLImageProcessor",
                "processor_class": "Qwen2VLProcessor",
            }
        )
    )
    processor = VisionProcessor.from_folder(folder)
    assert type(processor.image_processor).__name__ == "Qwen2VLImageProcessorPil"
    assert (processor.spec.min_pixels, processor.spec.max_pixels) == (3136, 12845056)
    batch = processor([_square(size=(640, 480))])
    assert batch.sizes == [(644, 476)] and batch.token_counts == [23 * 17]


def test_a_text_only_family_has_no_vision_setup(tiny_qwen):
    from swift_core.models.loader import prepare_model
    from swift_core.multimodal.setup import vision_setup

    assert vision_setup(prepare_model(str(tiny_qwen))) is None


def test_a_vl_folder_without_its_image_processor_is_a_clear_error(tmp_path):
    from swift_core.multimodal.processor import VisionProcessor

    with pytest.raises(SwiftError, match="preprocessor_config.json"):
        VisionProcessor.from_folder(tmp_path)


# --- the one resize --------------------------------------------------------------------------


def test_resize_keeps_area_within_bounds_and_sides_multiples_of_28():
    from swift_core.multimodal.resize import ResizeSpec, resized_size

    spec = ResizeSpec(min_pixels=28 * 28, max_pixels=112 * 112)
    for w, h in [(640, 480), (30, 500), (56, 56), (1000, 1000), (20, 20)]:
        rw, rh = resized_size(w, h, spec)
        assert rw % 28 == 0 and rh % 28 == 0
        assert spec.min_pixels <= rw * rh <= spec.max_pixels, (w, h, rw, rh)
    assert resized_size(640, 480, spec)[0] > resized_size(640, 480, spec)[1]  # aspect kept
    with pytest.raises(SwiftError, match="larger than --max_pixels"):
        ResizeSpec(min_pixels=10_000, max_pixels=5_000)


def test_processor_grid_follows_the_resize_and_max_pixels_bounds_the_tokens(prepared):
    from swift_core.multimodal.setup import vision_setup

    small = vision_setup(prepared, max_pixels=56 * 56, min_pixels=28 * 28).processor
    large = vision_setup(prepared, max_pixels=112 * 112, min_pixels=28 * 28).processor
    image = _square(size=(200, 150))
    a, b = small([image]), large([image])
    assert a.sizes == [small.resize(image).size] and a.token_counts[0] < b.token_counts[0]
    w, h = a.sizes[0]
    assert a.token_counts == [(w // 28) * (h // 28)]
    assert a.pixel_values.shape[0] == a.token_counts[0] * 4  # 2x2 patches per visual token


# --- the template ---------------------------------------------------------------------------


def test_rendered_prompt_equals_the_processor_chat_template(prepared):
    """The folder's chat template is Qwen2-VL's processor template (chat_template.jinja; the
    processor object itself needs torchvision for its video half, so the tokenizer renders it)."""
    ours = [
        {"role": "user", "content": "<image>What colour is the square?"},
        {"role": "assistant", "content": "red"},
        {"role": "user", "content": "And <image>this one?"},
    ]
    parts = [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": "What colour is the square?"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "red"}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And "},
                {"type": "image"},
                {"type": "text", "text": "this one?"},
            ],
        },
    ]
    expected = prepared.tokenizer.apply_chat_template(parts, tokenize=False, add_generation_prompt=True)
    assert prepared.template.render_text(ours, add_generation_prompt=True) == expected
    assert expected.count("<|vision_start|><|image_pad|><|vision_end|>") == 2


# --- model inputs ---------------------------------------------------------------------------


def test_collator_widens_each_image_placeholder_and_the_forward_takes_the_batch(prepared, vision):
    from swift_core.datasets.collator import PadCollator
    from swift_core.datasets.encode import IGNORE_INDEX, encode_rows
    from swift_core.models.loader import load_weights
    from swift_core.train.data import _to_features

    rows = [
        {
            "messages": [
                {"role": "user", "content": "<image>colour?"},
                {"role": "assistant", "content": "red"},
            ],
            "images": [_square()],
        },
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]},
    ]
    features = _to_features(encode_rows(prepared.template, prepared.tokenizer, rows))
    batch = vision.collator(PadCollator(prepared.tokenizer.pad_token_id))(features)
    image_id = vision.processor.image_token_id
    assert int((batch["input_ids"][0] == image_id).sum()) == 4  # 56x56 -> 2x2 visual tokens
    assert int((batch["input_ids"][1] == image_id).sum()) == 0
    assert torch.equal(batch["mm_token_type_ids"], (batch["input_ids"] == image_id).long())
    assert (batch["labels"][batch["input_ids"] == image_id] == IGNORE_INDEX).all()
    assert batch["image_grid_thw"].tolist() == [[1, 4, 4]]
    loss = load_weights(prepared, "float32")(**batch).loss
    assert torch.isfinite(loss)


def test_rows_without_image_tags_get_one_per_image_before_the_first_user_text(vision):
    row = {
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "colour?"}],
        "images": ["a", "b"],
    }
    (tagged,) = vision.prepare_rows([row])
    assert tagged["messages"][1]["content"] == "<image><image>colour?"
    assert vision.prepare_rows([tagged]) == [tagged]


def test_max_length_cutting_an_image_is_refused_before_training(prepared, vision):
    from swift_core.datasets.encode import encode_rows

    rows = [
        {
            "messages": [
                {"role": "user", "content": "hello " * 30 + "<image>"},
                {"role": "assistant", "content": "ok"},
            ],
            "images": ["x.png"],
        }
    ]
    whole = encode_rows(prepared.template, prepared.tokenizer, rows)
    vision.check_encoded(whole, None)
    cut = encode_rows(prepared.template, prepared.tokenizer, rows, max_length=20, truncation="right")
    with pytest.raises(SwiftError, match="--max_length 20 cuts into its images"):
        vision.check_encoded(cut, 20)


def test_more_images_than_placeholders_is_an_error():
    from swift_core.multimodal.inputs import expand_image_tokens

    assert expand_image_tokens([1, 9, 2], [1, 9, 2], [3], 9) == ([1, 9, 9, 9, 2], [1, -100, -100, -100, 2])
    with pytest.raises(SwiftError, match="1 image placeholder"):
        expand_image_tokens([1, 9, 2], None, [3, 3], 9)


# --- rows: ms-swift's format ----------------------------------------------------------------


def test_image_rows_relative_paths_tags_data_urls_and_bad_images(tmp_path, prepared):
    from swift_core.datasets.loader import load_rows
    from swift_core.multimodal.media import open_image, to_data_url

    (tmp_path / "img").mkdir()
    _square().save(tmp_path / "img" / "a.png")
    (tmp_path / "img" / "empty.png").write_bytes(b"")
    url = to_data_url(_square((0, 0, 255)))
    good = [
        {
            "messages": [
                {"role": "user", "content": "<image>colour?"},
                {"role": "assistant", "content": "red"},
            ],
            "images": ["img/a.png"],
        },
        {"query": "colour?", "response": "blue", "images": [url]},
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in good))
    rows = load_rows([str(data)], modalities=prepared.family.modalities, family="qwen2_vl").rows
    assert rows[0]["images"] == [str(tmp_path / "img" / "a.png")]
    assert open_image(rows[1]["images"][0]).getpixel((0, 0)) == (0, 0, 255)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"query": "q", "response": "r", "images": ["img/empty.png"]}) + "\n")
    with pytest.raises(SwiftError, match=r"bad\.jsonl.*line 1.*images\[0\].*empty"):
        load_rows([str(bad)], modalities=prepared.family.modalities)
    with pytest.raises(SwiftError, match="cannot decode"):
        open_image("data:image/png;base64,bm90IGFuIGltYWdl")
    inline = tmp_path / "inline.jsonl"
    inline.write_text(
        json.dumps({"query": "q", "response": "r"})
        + "\n"
        + json.dumps({"query": "q", "response": "r", "images": ["data:image/png;base64,bm90IGFuIGltYWdl"]})
        + "\n"
    )
    with pytest.raises(SwiftError, match=r"inline\.jsonl.*line 2.*images\[0\].*cannot decode the data: URL"):
        load_rows([str(inline)], modalities=prepared.family.modalities)


def test_http_images_need_the_flag_and_are_refused_offline(monkeypatch):
    from swift_core.multimodal.media import open_image

    with pytest.raises(SwiftError, match="not allowed"):
        open_image("https://example.com/a.png")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SwiftError, match="offline"):
        open_image("https://example.com/a.png", allow_http=True)
    with pytest.raises(SwiftError, match="local image paths are not allowed"):
        open_image("/etc/hostname", allow_local=False)


# --- grounding ------------------------------------------------------------------------------


@pytest.mark.parametrize("codec_name", ["qwen2_vl", "qwen2_5_vl"])
def test_box_round_trip_through_resize_template_parse_and_rescale(prepared, codec_name):
    """A box in original pixels -> the family's coordinates in the rendered answer -> tokens ->
    text -> parsed -> original pixels again, within one resized pixel."""
    from swift_core.multimodal.boxes import apply_objects, box_codec
    from swift_core.multimodal.resize import ResizeSpec, resized_size

    codec = box_codec(codec_name)
    original = (640, 480)
    resized = resized_size(*original, ResizeSpec(56 * 56, 224 * 224))
    box = [100.0, 50.0, 400.0, 300.0]
    row = {
        "messages": [
            {"role": "user", "content": "<image>Where is the <ref-object>?"},
            {"role": "assistant", "content": "<bbox>"},
        ],
        "objects": {"ref": ["circle"], "bbox": [box]},
    }
    written = apply_objects(row, codec, [(original, resized)])
    text = prepared.template.render_text(written["messages"])
    ids = prepared.tokenizer(text, add_special_tokens=False)["input_ids"]
    answer = prepared.tokenizer.decode(ids).split("<|im_start|>assistant\n")[-1]
    (coords,) = codec.parse(answer)
    back = codec.from_model(coords, original, resized)
    step = max(original[0] / resized[0], original[1] / resized[1]) if codec.scale == "resized" else 0.64
    assert all(abs(a - b) <= step for a, b in zip(back, box)), (back, box)
    if codec_name == "qwen2_vl":
        assert coords == [156, 104, 625, 625] and "circle" in text
    else:
        assert coords == codec.to_model(box, original, resized) and resized != original


def test_bad_boxes_name_the_field():
    from swift_core.datasets.formats import RowError
    from swift_core.multimodal.boxes import apply_objects, box_codec

    row = {
        "messages": [{"role": "user", "content": "<ref-object>"}, {"role": "assistant", "content": "<bbox>"}]
    }
    with pytest.raises(RowError, match="x1, y1, x2, y2") as err:
        apply_objects(
            {**row, "objects": {"ref": ["a"], "bbox": [[1, 2, 3]]}},
            box_codec("qwen2_vl"),
            [((10, 10), (28, 28))],
        )
    assert err.value.field == "objects.bbox[0]"


# --- what trains ----------------------------------------------------------------------------


def _args(**kw):
    from types import SimpleNamespace

    base = {"freeze_vit": None, "freeze_aligner": None, "freeze_llm": False, "target_modules": ["all-linear"]}
    return SimpleNamespace(**{**base, **kw})


def test_lora_targets_the_language_model_unless_the_vit_is_unfrozen(prepared, vision):
    from swift_core.models.loader import load_weights
    from swift_core.tuners.common import resolve_target_modules

    model = load_weights(prepared, "float32")
    family = vision.tuning_family(model, prepared.family, _args(), adapter=True)
    names = resolve_target_modules(model, _args(), family)
    assert names and all(".language_model." in n for n in names)
    unfrozen = vision.tuning_family(model, prepared.family, _args(freeze_vit=False), adapter=True)
    names = resolve_target_modules(model, _args(), unfrozen)
    assert any(".visual.blocks." in n for n in names) and any(".merger." in n for n in names)
    aligner = vision.tuning_family(model, prepared.family, _args(freeze_aligner=False), adapter=True)
    names = resolve_target_modules(model, _args(), aligner)
    assert any(".merger." in n for n in names) and not any(".blocks." in n for n in names if ".visual." in n)
    with pytest.raises(SwiftError, match="nothing would train"):
        vision.tuning_family(
            model, prepared.family, _args(freeze_vit=True, freeze_aligner=True, freeze_llm=True), adapter=True
        )


def test_full_training_freezes_only_the_parts_asked(prepared, vision):
    from swift_core.models.loader import load_weights

    model = load_weights(prepared, "float32")
    assert vision.freeze(model, _args(), adapter=False) == 0  # full: everything trains by default
    vision.freeze(model, _args(freeze_vit=True), adapter=False)
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    assert not any(g for n, g in grads.items() if ".visual." in n)
    assert all(g for n, g in grads.items() if ".language_model." in n)

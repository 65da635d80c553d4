"""Images through the engine and the OpenAI-compatible server: `image_url` parts (data: URLs always,
local paths and http(s) only behind flags), answered by a tiny Qwen2-VL with the same template,
resize and widening as training (`generate_batch` gives the same greedy answer)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from swift_core.engines.protocol import EngineConfig, GenerationRequest, UnsupportedRequest

KEY = "sk-test-key"


class Settings:
    api_key = KEY
    served_model_name = "tiny-vl"
    max_new_tokens = 8


def _image(colour):
    from PIL import Image

    return Image.new("RGB", (56, 56), colour)


@pytest.fixture(scope="module")
def vl_model(tmp_path_factory):
    from swift_core.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("vl-serve") / "qwen2_vl", "qwen2_vl", vocab_size=800)


@pytest.fixture(scope="module")
def engine(vl_model):
    from swift_core.engines.transformers.engine import TransformersEngine
    from swift_core.multimodal.options import ImageOptions

    eng = TransformersEngine(EngineConfig(model=str(vl_model), options=ImageOptions(max_pixels=56 * 56)))
    yield eng
    asyncio.run(eng.close())


@pytest.fixture(scope="module")
def server(engine):
    from swift_core.serve.app import create_app
    from swift_core.serve.server import bind_socket, make_server

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    srv = make_server(create_app(engine, Settings()), log_level="warning")
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)
    sock.close()


def _ask(text, url):
    return [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}],
        }
    ]


def test_openai_sdk_image_chat_answers_as_the_training_path_does(server, engine):
    import openai

    from swift_core.multimodal.generate import generate_batch
    from swift_core.multimodal.media import to_data_url

    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=60)
    answers = {}
    for colour in [(220, 30, 30), (30, 60, 220)]:
        r = client.chat.completions.create(
            model="tiny-vl",
            messages=_ask("What colour?", to_data_url(_image(colour))),
            max_tokens=6,
            temperature=0,
        )
        assert r.choices[0].message.role == "assistant"
        answers[colour] = r.choices[0].message.content
        # the same prompt through the training-side generation: same widening, same greedy text
        (direct,) = generate_batch(
            engine.base_model,
            engine.tokenizer,
            engine.template,
            engine.vision.setup.processor,
            [{"messages": [{"role": "user", "content": "<image>What colour?"}], "images": [_image(colour)]}],
            max_new_tokens=6,
        )
        assert answers[colour].strip() == direct
        assert r.usage.prompt_tokens > 4 + 20  # the image's 4 visual tokens are in the prompt


def test_local_paths_and_http_urls_need_their_flags(server, tmp_path, monkeypatch):
    import openai

    path = tmp_path / "a.png"
    _image((0, 200, 0)).save(path)
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=60)
    with pytest.raises(openai.BadRequestError, match="local image paths are not allowed"):
        client.chat.completions.create(model="tiny-vl", messages=_ask("colour?", str(path)), max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="http"):
        client.chat.completions.create(
            model="tiny-vl", messages=_ask("colour?", "https://example.com/a.png"), max_tokens=2
        )
    with pytest.raises(openai.BadRequestError, match="cannot decode"):
        client.chat.completions.create(
            model="tiny-vl", messages=_ask("colour?", "data:image/png;base64,AAAA"), max_tokens=2
        )


def test_engine_flags_allow_local_files_and_refuse_http_offline(engine, tmp_path, monkeypatch):
    from swift_core.multimodal.engine_inputs import EngineVision

    path = tmp_path / "b.png"
    _image((0, 200, 0)).save(path)
    request = GenerationRequest(
        messages=[{"role": "user", "content": "<image>colour?"}], images=[str(path)], max_tokens=2
    )
    monkeypatch.setattr(
        engine, "vision", EngineVision(engine.vision.setup, allow_local=True, allow_http=True)
    )
    response = asyncio.run(engine.generate(request))
    assert response.prompt_tokens == len(engine.prompt_ids(request))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = GenerationRequest(
        messages=[{"role": "user", "content": "<image>colour?"}],
        images=["https://example.com/a.png"],
        max_tokens=2,
    )
    with pytest.raises(UnsupportedRequest, match="offline"):
        asyncio.run(engine.generate(offline))
    with pytest.raises(UnsupportedRequest, match="1 <image> tag"):
        engine.check_request(GenerationRequest(messages=[{"role": "user", "content": "<image>x"}], images=[]))


def test_a_text_model_refuses_images(tiny_qwen, engine):
    from swift_core.engines.transformers.engine import TransformersEngine
    from swift_core.multimodal.engine_inputs import check_images

    request = GenerationRequest(messages=[{"role": "user", "content": "<image>x"}], images=["data:,"])
    with pytest.raises(UnsupportedRequest, match="takes text only"):
        check_images(None, request, UnsupportedRequest)
    text = TransformersEngine(EngineConfig(model=str(tiny_qwen)))
    try:
        assert not text.capabilities.images and engine.capabilities.images
        with pytest.raises(UnsupportedRequest, match="does not take images"):
            text.check_request(request)
    finally:
        asyncio.run(text.close())

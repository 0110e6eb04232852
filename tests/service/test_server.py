"""The served service judged by the official `openai` SDK, and the `serve` command itself."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import openai
import pytest

from remix_pipeline.cli import main
from remix_pipeline.contract import ContentVariant
from tests.support.servers import MakeConfig, serve_command, serving

KEY = "sk-test-0123456789abcdefghij"


def _sdk(base_url: str, key: str = KEY, retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=retries)


@pytest.fixture
def sdk(make_config: MakeConfig) -> openai.OpenAI:
    with serving(make_config(api_key=KEY)) as (base_url, _app):
        yield _sdk(base_url)


MAGIC = {
    ContentVariant.VIDEO: lambda data: data[4:8] == b"ftyp",
    ContentVariant.THUMBNAIL: lambda data: data[:4] == b"RIFF" and data[8:12] == b"WEBP",
    ContentVariant.SPRITESHEET: lambda data: data[:3] == b"\xff\xd8\xff",
}


def test_sdk_creates_polls_remixes_and_downloads_every_variant(sdk: openai.OpenAI) -> None:
    video = sdk.videos.create(prompt="A lighthouse in a storm", size="1280x720", seconds="4")
    assert isinstance(video, openai.types.Video) and video.status == "queued"
    video = sdk.videos.poll(video.id)
    assert (video.status, video.progress) == ("completed", 100)
    remix = sdk.videos.remix(video.id, prompt="The lighthouse in bright sunshine")
    assert remix.remixed_from_video_id == video.id
    remix = sdk.videos.poll(remix.id)
    assert remix.status == "completed"
    for variant in ContentVariant:
        content = sdk.videos.download_content(remix.id, variant=variant.value)
        assert MAGIC[variant](content.read()), variant


def test_sdk_auto_pagination_walks_every_video_in_both_orders(sdk: openai.OpenAI) -> None:
    created = [sdk.videos.create(prompt=f"take {n}").id for n in range(5)]
    ascending = [v.id for v in sdk.videos.list(limit=2, order="asc")]
    descending = [v.id for v in sdk.videos.list(limit=2, order="desc")]
    assert ascending[-5:] == created
    assert descending == ascending[::-1]
    assert len(ascending) == len(set(ascending))


def test_sdk_deletes_a_finished_video(sdk: openai.OpenAI) -> None:
    video = sdk.videos.poll(sdk.videos.create(prompt="short-lived").id)
    deleted = sdk.videos.delete(video.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    with pytest.raises(openai.NotFoundError):
        sdk.videos.retrieve(video.id)


def test_sdk_creates_and_fetches_a_character(sdk: openai.OpenAI) -> None:
    character = sdk.videos.create_character(video=("me.mp4", b"clip", "video/mp4"), name="Ada")
    assert sdk.videos.get_character(character.id).name == "Ada"


def test_sdk_edit_of_an_upload_that_is_not_a_video_is_refused_naming_the_param(
    sdk: openai.OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.videos.edit(video=("clip.mp4", b"data", "video/mp4"), prompt="add rain")
    assert (raised.value.param, raised.value.code) == ("video", "unsupported_file_type")


def test_sdk_raises_not_found_for_an_unknown_video(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.videos.retrieve("video_" + "f" * 32)


def test_sdk_raises_bad_request_naming_the_param(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.videos.create(prompt="x", size="640x480")  # type: ignore[arg-type]
    assert (raised.value.param, raised.value.code) == ("size", "invalid_value")


def test_sdk_raises_authentication_error_without_echoing_the_key(sdk: openai.OpenAI) -> None:
    wrong = "sk-wrong-key-that-must-not-be-echoed"
    with pytest.raises(openai.AuthenticationError) as raised:
        _sdk(str(sdk.base_url), key=wrong).videos.list()
    assert wrong not in str(raised.value) and wrong not in raised.value.response.text


def test_sdk_raises_rate_limit_error_when_the_limit_is_reached(
    make_config: MakeConfig,
) -> None:
    config = make_config(faults={"requests_per_minute": 1})
    with serving(config) as (base_url, _app):
        client = _sdk(base_url)
        client.videos.retrieve("video_src_harbor")
        with pytest.raises(openai.RateLimitError) as raised:
            client.videos.retrieve("video_src_harbor")
    assert int(raised.value.response.headers["retry-after"]) >= 1


def test_sdk_retry_honours_retry_after_ms_and_then_succeeds(make_config: MakeConfig) -> None:
    config = make_config(faults={"requests_per_minute": 1, "rate_window_seconds": 0.3})
    with serving(config) as (base_url, app):
        client = _sdk(base_url, retries=2)
        client.videos.retrieve("video_src_harbor")
        assert client.videos.retrieve("video_src_harbor").id == "video_src_harbor"
    assert app.state.stats.by_operation["retrieve"][429] >= 1
    assert app.state.stats.by_operation["retrieve"][200] == 2


def test_dropped_response_over_a_socket_is_a_connection_error_but_the_job_exists(
    make_config: MakeConfig,
) -> None:
    with serving(make_config(faults={"drop_rate": 1.0})) as (base_url, _app):
        client = _sdk(base_url)
        with pytest.raises(openai.APIConnectionError):
            client.videos.create(prompt="the answer is lost")
        newest = client.videos.list(limit=1).data[0]
    assert newest.prompt == "the answer is lost"


def test_poll_after_header_is_sent_on_retrieve(make_config: MakeConfig) -> None:
    with serving(make_config(poll_after_ms=123)) as (base_url, _app):
        response = httpx.get(f"{base_url}/videos/video_src_city")
    assert response.headers["openai-poll-after-ms"] == "123"


# the `serve` command -------------------------------------------------------------------------


def test_serve_prints_its_url_without_the_key_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path,
) -> None:
    secret = "sk-serve-secret-from-the-environment"
    process = serve_command(
        "--port", "0", "--db", str(tmp_path / "s.db"),
        env={"REMIX_PIPELINE_SERVE_API_KEY": secret},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.strip().rsplit(" ", 1)[-1]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        denied = httpx.get(f"{base_url}/videos")
        allowed = httpx.get(f"{base_url}/videos", headers={"authorization": f"Bearer {secret}"})
        assert (denied.status_code, allowed.status_code) == (401, 200)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert secret not in line + out + err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "bad",
    [["--error-rate", "2"], ["--rpm-limit", "0"], ["--port", "x"], ["--mode", "weird"]],
)
def test_serve_refuses_a_bad_option_in_one_line_with_exit_2(
    bad: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["serve", "--db", str(tmp_path / "s.db"), *bad])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0 and bad[0] in err


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = serve_command("--port", str(port), "--db", str(tmp_path / "s.db"))
        _out, err = process.communicate(timeout=20)
    assert process.returncode == 1
    assert err.strip().count("\n") == 0 and str(port) in err

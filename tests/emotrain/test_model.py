"""emotrain.model: the paper's network and its small twin — sizes, parameter counts, padding invariance, config, weights."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from shardformat import GENDERS, SAMPLE_RATE, SAMPLES_PER_FRAME, SHARED_EMOTIONS

from emotrain.model import (
    LOG_FLOOR,
    EmotionGenderNet,
    ModelConfig,
    build_model,
    imagenet_cache_path,
    resnet50_trunk,
)

RESNET50_TRUNK_PARAMETERS = 23_508_032  # torchvision resnet50 without fc (25,557,032 - 2048*1000 - 1000)


@pytest.fixture(autouse=True)
def _quiet_even_kernel_warning():
    # PyTorch warns on every padding="same" call with an even kernel (80, 40).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
        yield


def _conv_parameters(in_channels: int, out_channels: int, kernel: int) -> int:
    return in_channels * out_channels * kernel + out_channels


def _lstm_parameters(inputs: int, hidden: int, layers: int) -> int:
    total = 0
    for layer in range(layers):
        layer_inputs = inputs if layer == 0 else hidden
        total += 4 * hidden * (layer_inputs + hidden) + 2 * 4 * hidden  # two weight matrices, two bias vectors
    return total


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _batch(batch: int, steps: int, lengths: list[int], seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    audio = torch.randn(batch, steps * SAMPLES_PER_FRAME, generator=generator)
    frames = torch.randint(0, 256, (batch, steps, 3, 96, 96), dtype=torch.uint8, generator=generator)
    lengths_t = torch.tensor(lengths, dtype=torch.int64)
    for i, n in enumerate(lengths):  # what the loader guarantees: zeros past the valid steps
        audio[i, n * SAMPLES_PER_FRAME :] = 0
        frames[i, n:] = 0
    return audio, frames, lengths_t


@pytest.mark.parametrize(
    "modality,lstm_inputs,has_audio,has_visual",
    [("av", 1280 + 2048, True, True), ("a", 1280, True, False), ("v", 2048, False, True)],
)
def test_paper_parameter_count_by_hand(modality, lstm_inputs, has_audio, has_visual):
    model = build_model(ModelConfig(name="paper", modality=modality))
    expected = 0
    if has_audio:
        expected += _conv_parameters(1, 40, 80) + _conv_parameters(40, 40, 4000)  # 3,240 + 6,400,040
    if has_visual:
        expected += RESNET50_TRUNK_PARAMETERS
    expected += _lstm_parameters(lstm_inputs, 256, 2)
    expected += 256 * 4 + 4 + 256 * 2 + 2  # emotion and gender heads
    assert _count(model) == expected
    assert model.config.lstm_input == lstm_inputs


def test_resnet50_trunk_parameters():
    assert _count(resnet50_trunk()) == RESNET50_TRUNK_PARAMETERS


@pytest.mark.parametrize("name", ["paper", "small"])
@pytest.mark.parametrize("modality", ["av", "a", "v"])
def test_output_shapes(name, modality):
    model = build_model(ModelConfig(name=name, modality=modality)).eval()
    audio, frames, lengths = _batch(2, 3, [3, 2])
    with torch.no_grad():
        emotion, gender = model(audio if "a" in modality else None, frames if "v" in modality else None, lengths)
    assert emotion.shape == (2, len(SHARED_EMOTIONS)) and gender.shape == (2, len(GENDERS))
    assert torch.isfinite(emotion).all() and torch.isfinite(gender).all()


@pytest.mark.parametrize("name,audio_conv", [("paper", "fft"), ("paper", "direct"), ("small", "auto")])
def test_padding_invariance(name, audio_conv):
    """A sample's outputs are the same alone and batched with a longer sample (eval mode)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, audio_conv=audio_conv)).eval()
    # The short sample lies wholly within the long kernel's reach (250 ms) of the padding.
    audio, frames, lengths = _batch(2, 3, [3, 1], seed=1)
    with torch.no_grad():
        emotion, gender = model(audio, frames, lengths)
        alone_emotion, alone_gender = model(audio[1:, :SAMPLES_PER_FRAME], frames[1:, :1], lengths[1:])
    torch.testing.assert_close(emotion[1:], alone_emotion, atol=1e-5, rtol=0)
    torch.testing.assert_close(gender[1:], alone_gender, atol=1e-5, rtol=0)


def test_small_audio_step_pool_is_the_peak_per_step():
    """"max" step pooling keeps, per 40 ms step and channel group, the peak of the paper layout's 320 positions."""
    flat = build_model(ModelConfig(name="small", modality="a", audio_step_pool="flatten")).eval()
    peak = build_model(ModelConfig(name="small", modality="a")).eval()
    peak.audio.load_state_dict(flat.audio.state_dict())  # same convolutions; the LSTMs differ in input size
    audio, _, lengths = _batch(2, 3, [3, 2], seed=4)
    with torch.no_grad():
        positions = flat.audio(audio, lengths).view(2, 3, -1, peak.config.audio_features)  # (B, steps, 320, groups)
        torch.testing.assert_close(peak.audio(audio, lengths), positions.amax(dim=2))
    assert peak.config.audio_step_pool == "max" and ModelConfig().audio_step_pool == "flatten"


def test_log_compression_is_the_log_of_the_peak_magnitude():
    """audio_compress "log": log(floor + peak |response|) per step and filter; "log-cmvn" standardises it per utterance."""
    flat = build_model(ModelConfig(name="small", modality="a", audio_step_pool="flatten")).eval()
    logged = build_model(ModelConfig(name="small", modality="a", audio_compress="log")).eval()
    cmvn = build_model(ModelConfig(name="small", modality="a", audio_compress="log-cmvn")).eval()
    logged.audio.load_state_dict(flat.audio.state_dict())
    cmvn.audio.load_state_dict(flat.audio.state_dict())
    audio, _, lengths = _batch(2, 4, [4, 4], seed=5)
    with torch.no_grad():
        positions = flat.audio(audio, lengths).view(2, 4, -1, logged.config.audio_features)
        expected = torch.log(positions.abs().amax(dim=2) + LOG_FLOOR)
        torch.testing.assert_close(logged.audio(audio, lengths), expected)
        standardised = cmvn.audio(audio, lengths)
    mean, var = expected.mean(dim=1, keepdim=True), expected.var(dim=1, unbiased=False, keepdim=True)
    torch.testing.assert_close(standardised, (expected - mean) / torch.sqrt(var + 1e-5))


@pytest.mark.parametrize("compress,pool", [("log", "mean"), ("log-cmvn", "last")])
def test_speech_variants_ignore_padding(compress, pool):
    """The log envelope, its per-utterance standardisation and the mean over LSTM outputs use valid steps only."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="small", modality="a", audio_compress=compress, temporal_pool=pool)).eval()
    audio, _, lengths = _batch(2, 4, [4, 2], seed=6)
    with torch.no_grad():
        emotion, gender = model(audio, None, lengths)
        alone_emotion, alone_gender = model(audio[1:, : 2 * SAMPLES_PER_FRAME], None, lengths[1:])
    torch.testing.assert_close(emotion[1:], alone_emotion, atol=1e-5, rtol=0)
    torch.testing.assert_close(gender[1:], alone_gender, atol=1e-5, rtol=0)


def test_padding_content_is_ignored():
    """Whatever lies past a sample's valid steps (audio or frames) does not reach its outputs."""
    model = build_model(ModelConfig(name="small")).eval()
    audio, frames, lengths = _batch(2, 5, [5, 3], seed=2)
    noisy_audio, noisy_frames = audio.clone(), frames.clone()
    noisy_audio[1, 3 * SAMPLES_PER_FRAME :] = 7.0
    noisy_frames[1, 3:] = 200
    with torch.no_grad():
        clean = model(audio, frames, lengths)
        noisy = model(noisy_audio, noisy_frames, lengths)
    for a, b in zip(clean, noisy):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_audio_feature_layout_is_the_paper_codes():
    """Per step: 320 positions x channel groups, time-major, as the paper's permute + MaxPool1d(10) + view(n, -1, 1280)."""
    model = build_model(ModelConfig(name="paper", modality="a", audio_conv="fft")).eval()
    audio, _, lengths = _batch(2, 2, [2, 2], seed=3)
    branch = model.audio
    with torch.no_grad():
        ours = branch(audio, lengths)
        x = F.max_pool1d(branch.conv1(audio[:, None, :]), 2)
        x = branch.conv2(x).permute(0, 2, 1).contiguous()  # (n, positions, 40)
        paper = F.max_pool1d(x, 10).view(2, -1, 1280)  # max over channels 10g..10g+9
    assert ours.shape == (2, 2, 1280)
    torch.testing.assert_close(ours, paper, atol=1e-6, rtol=0)


def test_lstm_weights_are_xavier_normal():
    model = EmotionGenderNet(ModelConfig(name="paper", modality="a"))
    weight = model.lstm.weight_ih_l0  # (4*256, 1280)
    expected_std = math.sqrt(2.0 / (weight.shape[0] + weight.shape[1]))
    assert weight.std().item() == pytest.approx(expected_std, rel=0.02)
    assert abs(weight.mean().item()) < 0.01 * expected_std


def test_runs_under_bfloat16_autocast():
    model = build_model(ModelConfig(name="small"))
    audio, frames, lengths = _batch(2, 3, [3, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emotion, gender = model(audio, frames, lengths)
        loss = F.cross_entropy(emotion.float(), torch.tensor([0, 1])) + F.cross_entropy(gender.float(), torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_small_model_learns_a_synthetic_task():
    """Emotion is a tone's pitch in the audio, gender a frame's brightness: both heads must learn their branch's cue."""
    torch.manual_seed(0)
    steps, count = 4, 8
    emotion = torch.arange(count) % len(SHARED_EMOTIONS)
    gender = (torch.arange(count) // len(SHARED_EMOTIONS)) % len(GENDERS)
    lengths = torch.tensor([steps - (i % 3) for i in range(count)], dtype=torch.int64)
    t = torch.arange(steps * SAMPLES_PER_FRAME) / SAMPLE_RATE
    pitch = torch.tensor([200.0, 500.0, 1200.0, 3000.0])[emotion]
    audio = torch.sin(2 * math.pi * pitch[:, None] * t) + 0.1 * torch.randn(count, t.numel())
    frames = (60 + 120 * gender).view(count, 1, 1, 1, 1).expand(count, steps, 3, 96, 96).to(torch.uint8).clone()
    frames = (frames.float() + 20 * torch.randn(frames.shape)).clamp(0, 255).to(torch.uint8)
    for i, n in enumerate(lengths.tolist()):
        audio[i, n * SAMPLES_PER_FRAME :] = 0
        frames[i, n:] = 0
    model = build_model(ModelConfig(name="small", dropout=0.1))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = None
    for _ in range(50):
        emotion_logits, gender_logits = model(audio, frames, lengths)
        loss = F.cross_entropy(emotion_logits, emotion) + F.cross_entropy(gender_logits, gender)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        emotion_logits, gender_logits = model(audio, frames, lengths)
    assert loss.item() < 0.25 * first
    assert (emotion_logits.argmax(1) == emotion).float().mean() == 1.0
    assert (gender_logits.argmax(1) == gender).float().mean() == 1.0


def test_config_presets_overrides_and_round_trip():
    small = ModelConfig(name="small")
    assert small.visual_backbone == "small_cnn" and small.lstm_hidden == 64 and small.audio_long_kernel == 400
    paper = ModelConfig()
    assert (paper.audio_channels, paper.audio_kernel, paper.audio_long_kernel, paper.audio_channel_pool) == (40, 80, 4000, 10)
    assert (paper.lstm_hidden, paper.lstm_layers, paper.dropout, paper.visual_backbone) == (256, 2, 0.5, "resnet50")
    assert paper.audio_features == 1280 and paper.visual_features == 2048
    custom = ModelConfig(name="small", lstm_hidden=32, audio_activation="relu")
    assert custom.lstm_hidden == 32 and custom.audio_long_kernel == 400
    for config in (small, paper, custom, ModelConfig(modality="v", visual_weights="imagenet", audio_conv="direct")):
        assert ModelConfig.from_dict(config.to_dict()) == config
    assert set(paper.to_dict()) >= {"name", "modality", "audio_conv", "visual_weights", "dropout", "lstm_hidden", "lstm_layers"}


@pytest.mark.parametrize(
    "values,message",
    [
        ({"name": "huge"}, "model name must be one of"),
        ({"modality": "av+text"}, "modality must be one of"),
        ({"audio_conv": "winograd"}, "audio_conv must be one of"),
        ({"audio_channel_pool": 3}, "must divide audio_channels"),
        ({"audio_step_pool": "mean"}, "audio_step_pool must be one of"),
        ({"audio_compress": "log"}, "needs audio_step_pool 'max'"),
        ({"temporal_pool": "attention"}, "temporal_pool must be one of"),
        ({"lstm_hidden": 0}, "lstm_hidden must be a positive integer"),
        ({"lstm_layers": 1.5}, "lstm_layers must be a positive integer"),
        ({"dropout": 1.0}, "dropout must be a number in"),
        ({"name": "small", "visual_weights": "imagenet"}, "needs visual_backbone 'resnet50'"),
        ({"visual_weights": ""}, "visual_weights must be"),
    ],
)
def test_config_rejects_bad_values(values, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**values)


def test_from_dict_rejects_unknown_keys_and_non_dicts():
    with pytest.raises(ValueError, match=r"unknown keys \['lstm_units'\]"):
        ModelConfig.from_dict({"name": "paper", "lstm_units": 128})
    with pytest.raises(ValueError, match="must be a JSON object"):
        ModelConfig.from_dict(["paper"])


def test_forward_rejects_bad_inputs():
    model = build_model(ModelConfig(name="small")).eval()
    audio, frames, lengths = _batch(2, 3, [3, 2])
    with pytest.raises(ValueError, match="needs audio"):
        model(None, frames, lengths)
    with pytest.raises(ValueError, match="needs frames"):
        model(audio, None, lengths)
    with pytest.raises(ValueError, match="multiple of 640"):
        model(audio[:, :-1], frames, lengths)
    with pytest.raises(ValueError, match="frames must be uint8"):
        model(audio, frames.float(), lengths)
    with pytest.raises(ValueError, match="but frames has 2 steps"):
        model(audio, frames[:, :2], lengths)
    with pytest.raises(ValueError, match=r"lengths must lie in 1\.\.3"):
        model(audio, frames, torch.tensor([4, 2]))
    with pytest.raises(ValueError, match=r"lengths must lie in 1\.\.3"):
        model(audio, frames, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="int64"):
        model(audio, frames, lengths.int())


def test_imagenet_weights_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    assert imagenet_cache_path() == expected
    with pytest.raises(FileNotFoundError) as error:
        build_model(ModelConfig(visual_weights="imagenet"))
    message = str(error.value)
    assert str(expected) in message and "never downloads" in message and "IMAGENET1K_V1" in message
    # An audio-only model has no visual branch: nothing to load, no error; load_weights=False skips loading.
    build_model(ModelConfig(modality="a", visual_weights="imagenet"))
    build_model(ModelConfig(visual_weights="imagenet"), load_weights=False)


def test_visual_weights_load_from_cache_and_from_a_path(tmp_path, monkeypatch):
    """A torchvision resnet50 state dict (with fc) loads via the hub cache ("imagenet") and via a path."""
    import torchvision

    source = torchvision.models.resnet50(weights=None)
    with torch.no_grad():
        source.conv1.weight.fill_(0.25)
        source.layer4[2].bn3.running_mean.fill_(3.0)
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(source.state_dict(), cache / "resnet50-0676ba61.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for spec in ("imagenet", str(cache / "resnet50-0676ba61.pth")):
        trunk = build_model(ModelConfig(modality="v", visual_weights=spec)).visual.trunk
        assert torch.equal(trunk.conv1.weight, source.conv1.weight)
        assert torch.equal(trunk.layer4[2].bn3.running_mean, source.layer4[2].bn3.running_mean)


def test_visual_weights_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_model(ModelConfig(modality="v", visual_weights=str(tmp_path / "nope.pth")))
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="do not fit torchvision's resnet50"):
        build_model(ModelConfig(modality="v", visual_weights=str(wrong)))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read visual weights"):
        build_model(ModelConfig(modality="v", visual_weights=str(garbage)))


def test_batch_head_norm_trains_on_a_batch_of_one():
    """The batch-normalised head takes an epoch's one-sample last batch (running statistics)."""
    assert (ModelConfig(name="speech").audio_compress, ModelConfig(name="speech").temporal_pool) == ("log-cmvn", "mean")
    model = build_model(ModelConfig(name="speech", modality="a", head_norm="batch")).train()
    audio, _, lengths = _batch(1, 3, [3], seed=7)
    emotion, gender = model(audio, None, lengths)
    assert emotion.shape == (1, len(SHARED_EMOTIONS)) and torch.isfinite(emotion).all() and torch.isfinite(gender).all()


def test_batch_emotion_head_norm_leaves_the_gender_head_unnormalised():
    """head_norm "batch-emotion": the gender logits do not depend on what else is in the batch (train mode, no dropout)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="small", modality="a", temporal_pool="mean", head_norm="batch-emotion",
                                    dropout=0.0)).train()
    audio, _, lengths = _batch(3, 2, [2, 2, 2], seed=8)
    _, gender_all = model(audio, None, lengths)
    _, gender_two = model(audio[:2], None, lengths[:2])
    torch.testing.assert_close(gender_all[:2], gender_two)

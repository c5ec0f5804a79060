"""Audio of a synthetic dialog as arrays: one voice per utterance on its speaker's channel. No file I/O."""

from __future__ import annotations

import numpy as np

from emoprep.synth.plan import SAMPLE_RATE, SynthDialog
from emoprep.synth.signal import VoiceParams

NOISE_FLOOR = 0.002  # microphone hiss on both channels, about -54 dBFS, so silence is never digital zero
MAX_HARMONICS = 12
HIGHEST_HARMONIC_HZ = 7_000  # below the 8 kHz Nyquist limit even at the top of a rising contour
_FADE = int(0.02 * SAMPLE_RATE)


def _syllable_envelope(rng: np.random.Generator, voice: VoiceParams, n_samples: int) -> np.ndarray:
    """Bursts at the syllable rate (each 70-130 % of the nominal length, three quarters voiced)."""
    envelope = np.zeros(n_samples)
    position = int(voice.onset * SAMPLE_RATE)
    nominal = SAMPLE_RATE / voice.syllable_rate
    while True:
        length = int(nominal * rng.uniform(0.7, 1.3))
        voiced = int(length * 0.75)
        if position + voiced > n_samples - _FADE:
            break
        shape = np.sin(np.linspace(0.0, np.pi, voiced)) ** 1.5 * rng.uniform(0.7, 1.0)
        envelope[position:position + voiced] = shape
        position += length
    if not envelope.any():
        # Shorter than one syllable: voice whatever fits, so no utterance is silent.
        voiced = max(n_samples - position - _FADE, 1)
        envelope[position:position + voiced] = np.sin(np.linspace(0.0, np.pi, voiced))
    return envelope


def render_voice(voice: VoiceParams, n_samples: int) -> np.ndarray:
    """One utterance's voice plus its noise, float64 in about [-0.8, 0.8], `n_samples` long."""
    rng = np.random.default_rng(voice.seed)
    duration = n_samples / SAMPLE_RATE
    t = np.arange(n_samples) / SAMPLE_RATE
    knots = rng.normal(0.0, 1.0, int(duration * 20) + 2)  # a slow pitch wobble, new value every 50 ms
    wobble = np.interp(t * 20, np.arange(knots.size), knots) * voice.jitter
    pitch = voice.pitch * (1.0 + voice.pitch_slope * t / duration) * (1.0 + wobble)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    harmonics = int(min(MAX_HARMONICS, HIGHEST_HARMONIC_HZ // pitch.max()))
    weights = np.arange(1, harmonics + 1) ** -voice.tilt
    tone = sum(w * np.sin(k * phase) for k, w in enumerate(weights, start=1)) / weights.sum()
    envelope = _syllable_envelope(rng, voice, n_samples)
    noise = rng.normal(0.0, voice.level * 10 ** (-voice.snr_db / 20), n_samples)
    return voice.level * envelope * tone + noise


def render_dialog_audio(dialog: SynthDialog) -> np.ndarray:
    """The dialog's two microphone channels as int16, shape (n_samples, 2).

    Channel 0 is the left actor's microphone, channel 1 the right one's; each
    utterance's voice lies on its speaker's channel over [start, end), so a
    sentence wav is that channel's slice, sample for sample.
    """
    rng = np.random.default_rng(dialog.noise_seed)
    audio = rng.normal(0.0, NOISE_FLOOR, (dialog.n_samples, 2))
    for utterance in dialog.utterances:
        span = slice(utterance.start_sample, utterance.end_sample)
        audio[span, utterance.channel] += render_voice(utterance.voice, utterance.end_sample - utterance.start_sample)
    return np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)

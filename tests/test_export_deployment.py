"""`dsd-seq export --format torchscript|onnx`: the exported acoustic models (DeepSpeech 1, DeepSpeech 2 with
its packed recurrent stack, the Table 8 network) and NeuralTalk's decoder step give the eager model's
outputs on real inputs: features of the built-in synthetic speech corpus's test utterances, image features
of the built-in caption corpus. Stated tolerance: |exported - eager| <= 1e-4 + 1e-4 |eager| on every
log-probability (float32, CPU), with equal output lengths and equal greedy transcripts / captions.

ONNX runs need `onnx` and `onnxruntime` (the `onnx` extra); without them those cases skip, saying so."""

import importlib.util
import json

import pytest
import torch

from data_prep.audio.audio_io import read_audio_with_rate
from data_prep.corpora.kaldi_dir import read_data_dir
from data_prep.corpora.synth_captions import SynthCaptionsConfig
from data_prep.corpora.synth_speech import SynthSpeechConfig, generate_corpus
from data_prep.features.extraction import FeatureConfig, build_feature_store, compute_features
from data_prep.images.image_features import load_feature_cache
from data_prep.text.vocab import CharVocab
from dsd_seq.cli import main
from dsd_seq.export import load_model
from dsd_seq.export.deployment import ATOL, RTOL
from dsd_seq.export.package import MANIFEST, sha256
from models.captioning.neuraltalk import EOS
from models.speech.ctc_decoding import DecodingConfig, ctc_text_decoder
from tests.caption_fixtures import train_tiny_captioner

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(
    not HAVE_ONNX, reason="onnx/onnxruntime not installed: pip install -e '.[onnx]'"
)

MODEL_ARGS = {
    "deepspeech1": "{context: 2, hidden: 24}",
    "deepspeech2": "{conv_channels: [4], conv_kernels: [[5, 11]], conv_strides: [[2, 2]], rnn_layers: 2,"
    " rnn_hidden: 24}",
    "deepspeech2_table8": "{conv_channels: 4, conv_kernels: [[5, 11], [5, 5]], recurrent_layers: 2, hidden: 24}",
}


@pytest.fixture(scope="module")
def speech_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy_speech")
    dirs = generate_corpus(
        root / "data", SynthSpeechConfig(num_train=6, num_dev=2, num_test=4, seed=7, jobs=1), progress=False
    )
    for split in ("train", "dev"):
        build_feature_store(dirs[split], root / split, FeatureConfig(), CharVocab.default(), progress=False)
    return root, dirs


def _train_and_export(root, model: str, formats: list[str]):
    config = root / f"{model}.yaml"
    config.write_text(
        "task: models.speech.speech_task:build_task\n"
        f"task_args: {{data: {{train: '{root / 'train'}', dev: '{root / 'dev'}'}}, batch_size: 3,"
        f" model: {model}, model_args: {MODEL_ARGS[model]}}}\n"
        "schedule: D1:3e-3,S1@0.5:1e-3\n"
        "train: {num_threads: 1, tensorboard: false, progress: false, eval_splits: [dev]}\n"
    )
    exp = root / f"exp_{model}"
    assert main(["train", "--config", str(config), "--exp-dir", str(exp)]) == 0
    package = root / f"pkg_{model}"
    args = ["export", str(exp), "--phase", "2", "--compressed", "--out", str(package)]
    assert main(args + [a for f in formats for a in ("--format", f)]) == 0
    return package


def _real_features(recognizer, test_dir):
    """The test utterances' features as the recogniser computes them, padded into one batch."""
    feats = []
    for utt in read_data_dir(test_dir):
        wave, _ = read_audio_with_rate(utt.wav_path, recognizer.sample_rate, allow_upsampling=False)
        feats.append(compute_features(wave, recognizer.features))
    lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.int64)
    return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), lengths


def _assert_same(eager, exported, lengths):
    """Equal lengths; every valid frame's log-probs within the tolerance (padded frames are ignored)."""
    log_probs, out_lengths = eager
    got_log_probs, got_lengths = (torch.as_tensor(t) for t in exported)
    assert torch.equal(got_lengths, out_lengths)
    assert got_log_probs.shape == log_probs.shape
    for i, n in enumerate(out_lengths.tolist()):
        torch.testing.assert_close(got_log_probs[i, :n], log_probs[i, :n], atol=ATOL, rtol=RTOL)
    return float(
        max((got_log_probs[i, :n] - log_probs[i, :n]).abs().max() for i, n in enumerate(out_lengths))
    )


@pytest.mark.slow
@pytest.mark.parametrize("model", ["deepspeech1", "deepspeech2", "deepspeech2_table8"])
def test_exported_acoustic_model_gives_the_eager_log_probs_on_real_speech(speech_corpus, model):
    root, dirs = speech_corpus
    onnx_ok = HAVE_ONNX and model != "deepspeech2"
    package = _train_and_export(root, model, ["torchscript"] + (["onnx"] if onnx_ok else []))
    manifest = json.loads((package / MANIFEST).read_text())
    files = [e["file"] for entries in manifest["deployment"].values() for e in entries]
    assert files == ["acoustic_model.ts"] + (["acoustic_model.onnx"] if onnx_ok else [])
    for name in files:  # listed with their checksums, like the weights
        assert manifest["files"][name] == sha256(package / name)

    recognizer = load_model(package)  # the sparse phase's weights, stored compressed, loaded exactly
    features, lengths = _real_features(recognizer, dirs["test"])
    with torch.no_grad():
        eager = recognizer.model(features, lengths)
        scripted = torch.jit.load(str(package / "acoustic_model.ts"))(features, lengths)
    difference = _assert_same(eager, scripted, lengths)
    assert difference <= manifest["deployment"]["torchscript"][0]["max_abs_difference"] + ATOL
    decode = ctc_text_decoder(DecodingConfig(mode="greedy"), recognizer.vocab, [])
    assert decode(*scripted) == decode(*eager)
    if onnx_ok:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(package / "acoustic_model.onnx"))
        outputs = session.run(None, {"features": features.numpy(), "feature_lengths": lengths.numpy()})
        _assert_same(eager, [torch.from_numpy(o) for o in outputs], lengths)
        # one utterance alone: the batch axis and the frame axis are dynamic
        one, one_length = features[1:2, : lengths[1]], lengths[1:2]
        alone = session.run(None, {"features": one.numpy(), "feature_lengths": one_length.numpy()})
        with torch.no_grad():
            _assert_same(recognizer.model(one, one_length), [torch.from_numpy(o) for o in alone], one_length)


@needs_onnx
def test_deepspeech2_onnx_is_refused_with_the_reason(speech_corpus, capsys):
    root, _ = speech_corpus
    exp = root / "exp_deepspeech2"
    if not exp.is_dir():
        _train_and_export(root, "deepspeech2", [])
    assert main(["export", str(exp), "--out", str(root / "ds2_onnx"), "--format", "onnx"]) != 0
    assert "PackedSequence" in capsys.readouterr().err


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy_caption")
    corpus = SynthCaptionsConfig(num_train=24, num_val=4, num_test=6, seed=3)
    train_tiny_captioner(
        root, corpus, pretrain_images=32, model_args="{embed_dim: 16, hidden: 16, layers: 2}", batch_size=8,
        schedule="D1:1e-2,S1@0.8:1e-3",
    )  # fmt: skip
    formats = ["--format", "torchscript"] + (["--format", "onnx"] if HAVE_ONNX else [])
    assert main(["export", str(root / "exp"), "--compressed", "--out", str(root / "pkg"), *formats]) == 0
    return root


def _greedy(start, step, features, max_length=16):
    """Greedy captions through exported start/step functions (as NeuralTalk.greedy decodes)."""
    log_probs, h, c = start(features)
    out, done = [[] for _ in range(features.shape[0])], [False] * features.shape[0]
    for _ in range(max_length):
        word = log_probs.argmax(-1)
        for i, w in enumerate(word.tolist()):
            if not done[i]:
                done[i] = w == EOS
                out[i] += [] if done[i] else [w]
        if all(done):
            break
        log_probs, h, c = step(word, h, c)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torchscript", pytest.param("onnx", marks=needs_onnx)])
def test_exported_decoder_step_gives_the_eager_log_probs_on_real_image_features(captioner, fmt):
    package = captioner / "pkg"
    model = load_model(package).model
    features = load_feature_cache(captioner / "feats.pt")["features"][:6].float()  # real images' features
    if fmt == "torchscript":
        start_graph = torch.jit.load(str(package / "decoder_start.ts"))
        step_graph = torch.jit.load(str(package / "decoder_step.ts"))
    else:
        import onnxruntime

        sessions = {
            n: onnxruntime.InferenceSession(str(package / f"{n}.onnx"))
            for n in ("decoder_start", "decoder_step")
        }

        def start_graph(x):
            return [
                torch.from_numpy(o)
                for o in sessions["decoder_start"].run(None, {"image_features": x.numpy()})
            ]

        def step_graph(w, h, c):
            feeds = {"word": w.numpy(), "h": h.numpy(), "c": c.numpy()}
            return [torch.from_numpy(o) for o in sessions["decoder_step"].run(None, feeds)]

    with torch.no_grad():
        logits, (h, c) = model.start(features)
        got, got_h, got_c = start_graph(features)
        torch.testing.assert_close(got, logits.log_softmax(-1), atol=ATOL, rtol=RTOL)
        torch.testing.assert_close((got_h, got_c), (h, c), atol=ATOL, rtol=RTOL)
        for _ in range(4):  # steps along the greedy path, from the real images' states
            word = logits.argmax(-1)
            logits, (h, c) = model.step(word.unsqueeze(1), (h, c))
            got, got_h, got_c = step_graph(word, got_h, got_c)
            torch.testing.assert_close(got, logits.log_softmax(-1), atol=ATOL, rtol=RTOL)
            torch.testing.assert_close((got_h, got_c), (h, c), atol=ATOL, rtol=RTOL)
        assert _greedy(start_graph, step_graph, features) == model.greedy(features, 16)

"""NeuralTalk under DSD: the word embedding is never pruned while every LSTM and FC matrix is (the paper's
Sec. 4.3, 80% sparsity); beam search with beam 1 is greedy decoding; a vocabulary mismatch is refused."""

import pytest
import torch

from dsd_seq import DSD, Schedule
from dsd_seq.core.selection import select_prunable
from models.captioning.neuraltalk import NeuralTalk, NeuralTalkConfig, VocabularyMismatchError

WORDS = ["<pad>", "<bos>", "<eos>", "<unk>", "a", "red", "circle", "square"]


def _model(seed: int = 0, words=WORDS) -> NeuralTalk:
    torch.manual_seed(seed)
    return NeuralTalk(
        NeuralTalkConfig(feature_dim=12, vocab_size=len(words), embed_dim=16, hidden=16, layers=2), words
    )


def test_embedding_is_never_masked_while_lstm_and_fc_matrices_are():
    model = _model()
    names = set(select_prunable(model))
    assert names == {"image_proj.weight", "out.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0",
                     "lstm.weight_ih_l1", "lstm.weight_hh_l1"}  # fmt: skip
    embedding = model.embed.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    dsd = DSD(model, optimizer)
    dsd.enter(Schedule.parse("S1@0.8:1e-3")[0])
    for name, param in model.named_parameters():
        if name in names:
            assert (param == 0).float().mean().item() == pytest.approx(0.8, abs=0.02), name
    assert torch.equal(model.embed.weight, embedding) and (embedding[1:] != 0).all()  # row 0: padding


def test_beam_search_with_beam_one_equals_greedy():
    model = _model().eval()
    features = torch.randn(6, 12)
    greedy = model.greedy(features, max_length=7)
    beam = [model.beam_search(f, beam_size=1, max_length=7) for f in features]
    assert beam == greedy
    wider = [model.beam_search(f, beam_size=3, max_length=7, length_penalty=1.0) for f in features]
    assert all(len(c) <= 7 for c in wider)


def test_teacher_forcing_predicts_one_word_per_input_position():
    model = _model()
    logits = model(torch.randn(3, 12), torch.tensor([[1, 4, 5, 6], [1, 4, 7, 0], [1, 5, 0, 0]]))
    assert logits.shape == (3, 4, len(WORDS))


def test_checkpoint_with_another_vocabulary_is_refused_naming_the_words():
    other = _model(words=[*WORDS[:4], "a", "blue", "circle", "square"])
    with pytest.raises(VocabularyMismatchError, match=r"index 5: checkpoint \['blue'"):
        _model().load_state_dict(other.state_dict())
    _model().load_state_dict(_model(seed=3).state_dict())  # same vocabulary: fine

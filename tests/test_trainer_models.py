"""Models: shapes, MLP with layers=0 is exactly a linear layer, LSTM reads the sequence in order."""

import torch
from torch import nn

from trainer.config import ModelConfig
from trainer.models import LSTM, MLP, build_model


def test_mlp_and_lstm_give_one_output_per_row():
    x = torch.randn(7, 8, 3)
    for kind in ("mlp", "lstm"):
        model = build_model(ModelConfig(kind=kind, hidden=5, layers=2, dropout=0.2), window=8, n_features=3)
        assert model(x).shape == (7,)


def test_mlp_without_hidden_layers_is_linear_regression():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="mlp", layers=0), window=8, n_features=3)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert isinstance(model, MLP) and len(linears) == 1 and linears[0].in_features == 24
    x = torch.randn(5, 8, 3)
    expected = x.reshape(5, 24) @ linears[0].weight[0] + linears[0].bias[0]
    torch.testing.assert_close(model(x), expected)


def test_mlp_depth_and_dropout_follow_the_config():
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=4, layers=3, dropout=0.5), window=2, n_features=2)
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [4, 4, 4, 1]
    x = torch.randn(64, 2, 2)
    assert not torch.equal(model.train()(x), model(x))  # dropout is on while training
    assert torch.equal(model.eval()(x), model(x))  # and off for evaluation
    plain = build_model(ModelConfig(hidden=4, layers=3, dropout=0.0), window=2, n_features=2)
    assert torch.equal(plain.train()(x), plain(x))


def test_lstm_depends_on_the_order_of_the_window():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="lstm", hidden=6, layers=1), window=8, n_features=3)
    assert isinstance(model, LSTM)
    x = torch.randn(4, 8, 3)
    assert not torch.allclose(model(x), model(x.flip(1)))

"""One DDP training program for a laptop, torchrun and a Kubeflow PyTorchJob (see model/README.md).

Modules: `config` (YAML + overrides, validated), `models` (MLP, LSTM), `data` (stream and memory batches),
`distributed` (environment, rendezvous, reductions), `loop` (train step, evaluation), `metrics`,
`baselines`, `run_files` (atomic outputs), `report` (log lines), `run` (the program), `cli`.
"""

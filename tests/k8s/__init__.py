"""Test helpers for the Kubernetes part: the vendored PyTorchJob CRD, its schema check, an emulated training
operator that runs pods in network namespaces, and a Kubernetes API server stand-in."""

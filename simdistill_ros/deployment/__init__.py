"""Deployment: a trained model out of torch. ONNX export (``export``), int8 quantisation (``quantize``), the
onnxruntime runner that the detector core and the evaluation use (``onnx_runtime``) and
`simdistill export` (``export_command``)."""

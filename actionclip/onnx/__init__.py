"""Export to ONNX and the onnxruntime path."""

"""Running trained models: finding checkpoints, batching frames, decoding and formatting detections."""

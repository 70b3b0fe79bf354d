"""Defaults that several commands and the nodes share, each written once. Plain values: importing this
costs nothing (the ``simdistill`` parser reads it without loading torch)."""

DEFAULT_MODEL = "baseline_v3"  # the detector of `detector_node` and `simdistill detect`
DEFAULT_TEACHER = "teacher_v2"  # the teacher of `simdistill replay` and `teacher_replay_node`
# Minimum score of a published (live) or written (`detect`) detection. Chosen on the val split for the
# shipped student_v2: the F1 of its boxes (matched within 2 m, same class) is 0.42 at 0.2, 0.46 at 0.25 and
# 0.46 at 0.3; for baseline_v3 0.43, 0.47 and 0.49 (baseline_depth_v3 0.43, 0.48, 0.50), kept at 0.25 for
# its recall (five points above 0.3's; tools/score_threshold.py, docs/reproduction.md).
DEFAULT_SCORE_THRESHOLD = 0.25
# Scoring keeps nearly every box: mAP integrates over the whole precision-recall curve.
EVAL_SCORE_THRESHOLD = 0.05
# The teacher's boxes kept in a target store (pseudo-labels are filtered further when training).
REPLAY_SCORE_THRESHOLD = 0.1
# A model's decoding threshold when its caller names none (``HeadConfig.score_threshold``, stored with each
# checkpoint's config).
HEAD_SCORE_THRESHOLD = 0.1
# The teacher score a box needs to become a pseudo-label (training on unlabeled frames, `simdistill train
# --pseudo-labels`).
PSEUDO_LABEL_THRESHOLD = 0.3
# How a camera's images relate to its CameraInfo (the sensor parameter image_rectification): "rectified"
# images use P's camera matrix, "raw" ones K; "auto" reads it from the image topic's name.
IMAGE_RECTIFICATIONS = ("auto", "rectified", "raw")

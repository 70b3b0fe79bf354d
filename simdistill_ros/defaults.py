"""Defaults that several commands and the nodes share, each written once. Plain values: importing this
costs nothing (the ``simdistill`` parser reads it without loading torch)."""

DEFAULT_MODEL = "student_v2"  # the detector of `detector_node` and `simdistill detect`
DEFAULT_TEACHER = "teacher_v2"  # the teacher of `simdistill replay` and `teacher_replay_node`
# Minimum score of a published (live) or written (`detect`) detection; suits the shipped student.
DEFAULT_SCORE_THRESHOLD = 0.2
# Scoring keeps nearly every box: mAP integrates over the whole precision-recall curve.
EVAL_SCORE_THRESHOLD = 0.05
# The teacher's boxes kept in a target store (pseudo-labels are filtered further when training).
REPLAY_SCORE_THRESHOLD = 0.1

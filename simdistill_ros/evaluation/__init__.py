"""Official nuScenes DetectionEval wrapper (``nuscenes_eval``) and the ``simdistill evaluate`` command."""

"""Offline teacher replay: run the LiDAR-camera teacher over bags once and store what the student needs
(inputs, BEV features, head outputs, pseudo-labels, ground truth) so that it trains without the teacher."""

"""nuScenes-format tables of the synthetic world and the training data path."""

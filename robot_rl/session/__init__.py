"""On-robot fine-tuning sessions: the learner process (above both ``train`` and ``robot``)."""

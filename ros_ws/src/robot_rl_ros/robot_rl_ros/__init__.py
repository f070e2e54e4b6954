"""rclpy nodes for robot_rl: thin shells (parameters, QoS, timers, message conversion) around the
transport-agnostic logic in :mod:`robot_rl.robot`, the same logic the ``robot-rl robot ...``
verbs run over Cyclone DDS. Node modules import rclpy and fail with one clear line without it;
:mod:`robot_rl_ros.params` is pure and imports anywhere."""

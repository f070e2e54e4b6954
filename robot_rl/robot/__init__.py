"""Robot side: ROS 2-compatible messages and DDS transport, the sim robot node (transport logic tested without a robot)."""

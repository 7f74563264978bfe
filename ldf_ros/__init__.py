"""ldf_ros: text-guided, depth-driven diffusion fusion of RGB and thermal cameras for ROS 2."""
__version__ = "0.1.0"

"""ldf_ros.training"""

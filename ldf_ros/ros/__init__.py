"""ldf_ros.ros"""

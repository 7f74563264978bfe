"""ldf_ros.runtime"""

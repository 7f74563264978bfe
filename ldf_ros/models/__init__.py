"""ldf_ros.models"""

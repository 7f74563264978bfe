"""ldf_ros.synthetic"""

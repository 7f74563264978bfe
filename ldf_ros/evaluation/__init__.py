"""ldf_ros.evaluation"""

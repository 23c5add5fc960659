"""A simulated fleet of meters, grid nodes and weather stations, with labelled faults.

A demo and test generator, not a production source: it sits beside the stages and hands
its frames to the same pipeline every real source uses.
"""

"""What each harness really offers, one module per harness.

The skills and agents tell a model which tools to call with which parameters.
A harness release can rename a tool, drop a parameter or stop offering a tool
to subagents, and nothing in the model's reply says so: the instruction just
stops working. Each module here records one harness's surface as observed in
its pinned release, so a test can hold every skill, agent and template to it
and a pin bump shows which sentences went stale.
"""

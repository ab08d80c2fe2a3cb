"""kubeadm upgrades one minor version at a time: the pure planning core.

``skew`` (version skew policy), ``repository`` (released versions, ``--to``), ``state``
(discovered cluster state, journal), ``steps`` (the runbook's named steps), ``plan`` (hops),
``render`` (the plan table as text and JSON). No I/O apart from the journal load/save helpers.
"""

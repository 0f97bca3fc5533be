"""The local lab: a small platform on 127.0.x.y that exercises ralf's whole flow on one machine.

Its services are tiny Python servers (:mod:`ralf.lab.store`, :mod:`ralf.lab.web`) and a non-root nginx,
kept running by a pid-file supervisor (:mod:`ralf.lab.supervisor`) whose "units" stand in for systemd
units. The lab's Ansible stacks (``examples/lab/stacks``) configure and start them; ``ralf lab break``
breaks one layer on purpose so that smoke, triage and resume can be seen at work.
"""

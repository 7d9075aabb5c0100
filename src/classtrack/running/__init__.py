"""Running a program under a tracker (``classtrack run``): the program
itself (``program``), which classes it tracks (``watch``), its child
processes (``follow``) and the metrics server (``metrics_server``).
Below the command layer: nothing here imports ``classtrack.commands``."""

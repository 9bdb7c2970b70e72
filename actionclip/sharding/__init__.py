"""Runs shared among the processes of a launcher (``torchrun``, ``accelerate launch``): each process takes its share of
the files, finished results wait in a work folder, the main process gathers them and writes the output once."""

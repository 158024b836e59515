"""``prefetch``: a cache-line prefetch hint for numba kernels (LLVM's ``llvm.prefetch``, ``prefetcht0``/``prefetchw``
on x86, ``prfm`` on ARM, nothing where the CPU has none).

Kernels that walk rows of large tables in an order they know ahead, as FM's shuffled rows and their factor rows
(``fm_compiled``), wait on main memory at every row; asking for a row a few iterations before it is needed lets
those waits overlap. numba has no such call of its own. A hint never faults, even past an array's end, and never
changes a result.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

CACHE_LINE = 64  # bytes


@intrinsic
def prefetch(typingctx, array, index, offset, write):
    """Hint that the cache line ``offset`` bytes past the start of ``array[index]`` (its first element when
    ``array`` has more dimensions) is needed soon; ``write`` (a literal bool) when it will be written."""
    if not (isinstance(array, types.Array) and isinstance(write, types.BooleanLiteral)):
        return None
    if not (isinstance(index, types.Integer) and isinstance(offset, types.Integer)):
        return None
    signature = types.void(array, index, offset, write)

    def codegen(context, builder, signature, args):
        array_type, index_type, offset_type = signature.args[:3]
        view = context.make_array(array_type)(context, builder, args[0])
        at = [context.cast(builder, args[1], index_type, types.intp)]
        at += [context.get_constant(types.intp, 0)] * (array_type.ndim - 1)
        element = cgutils.get_item_pointer(context, builder, array_type, view, at, wraparound=False)
        address = builder.add(
            builder.ptrtoint(element, cgutils.intp_t), context.cast(builder, args[2], offset_type, types.intp)
        )
        byte_pointer = builder.inttoptr(address, cgutils.voidptr_t)
        i32 = ir.IntType(32)
        hint = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t, i32, i32, i32]), "llvm.prefetch.p0"
        )
        # read (0) or write (1); locality 3: keep in every cache level; 1: a data (not instruction) line
        builder.call(hint, [byte_pointer, i32(int(write.literal_value)), i32(3), i32(1)])
        return context.get_dummy_value()

    return signature, codegen

;; prelude: memory abi alloc ok
;; Non-final function types (function subtyping, from the GC proposal) and
;; an indirect call whose expected type the callee's is not a subtype of:
;; checking that needs a subtype test at run time, which wasmtime 48.0.8
;; built without its `gc` feature made by a call that aborts the process
;; (fixed upstream in 48.0.9). The pool's engines refuse such types.
(type $base (sub (func)))
(type $derived (sub $base (func)))
(table 1 funcref)
(elem (i32.const 0) func $callee)
(func $callee (type $base))
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (call_indirect (type $derived) (i32.const 0))
  i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")

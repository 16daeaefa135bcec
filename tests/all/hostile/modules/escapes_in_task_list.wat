;; prelude: memory abi alloc ok
;; A task whose parameter name, parameter type and doc comment hold escape
;; sequences, a bell and a bidi override, as `wasmpool list` would print
;; them.
(func (export "wasmpool_task_attack") (param i32 i32) (result i32) i32.const 0)
;; version 1, "attack", one parameter: name (5 bytes) and type (9 bytes),
;; result "()", doc (20 bytes).
(@custom "wasmpool.tasks" "\01\06attack\01\05\1b[2Jx\09u32\1b]0;t\07\02()\14Looks\1b[8m hidden\e2\80\ae.")

;; prelude: memory abi alloc ok
;; Traps in a function whose name in the name section is an escape
;; sequence: the trap's backtrace names it.
(func $evil (@name "\1b[31mevil\1b[0m") unreachable)
(func (export "wasmpool_task_attack") (param i32 i32) (result i32) call $evil i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")

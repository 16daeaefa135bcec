;; prelude: memory abi alloc ok
;; A task that never returns, given to the pool as its init task: the pool
;; runs it once while it loads.
(func (export "wasmpool_task_hang") (param i32 i32) (result i32) (loop $forever (br $forever)) i32.const 0)
(@custom "wasmpool.tasks" "\01\04hang\00\02()\00")

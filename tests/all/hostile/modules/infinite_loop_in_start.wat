;; prelude: memory abi alloc ok
;; The start function never returns: instantiating the module hangs, so
;; building a pool must be bounded by the deadline.
(func $hang (loop $forever (br $forever)))
(start $hang)

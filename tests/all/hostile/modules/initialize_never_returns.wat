;; prelude: memory abi alloc ok
;; A WASI "reactor" whose `_initialize` never returns: a WASI pool calls it
;; on every new instance, so first while it loads.
(func (export "_initialize") (loop $forever (br $forever)))

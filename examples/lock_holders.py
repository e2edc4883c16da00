"""Find the thread holding a lock: every thread blocked on a mutex, the
mutex, and the thread that owns it (struct thread's wait_mutex, set by
kernel/sched/sync.c while mutex_lock sleeps; struct mutex's owner).
A cycle among them is a deadlock.  Same script live and on a core:

    unik py NAME examples/lock_holders.py
    unik py --core CORE examples/lock_holders.py
"""

def mutex_name(m):
    """The mutex's own name (its wait queue's) and the variable holding it."""
    sym = prog.symbol(m.address_)
    var = f" ({sym})" if sym else ""
    return f"mutex:{m.q.name.string_()}{var}"


def who(t):
    return f'thread {int(t.tid)} "{t.name.string_()}"'


holder = {}                                   # waiter address -> owner address
for th in prog.threads():
    t = th.obj
    if th.state_name != "sleeping" or not int(t.wait_mutex):
        continue
    m = t.wait_mutex.deref()
    owner = m.owner.deref() if int(m.owner) else None
    held = f"held by {who(owner)}" if owner is not None else "free (wakeup pending)"
    print(f"{who(t)} waits on {mutex_name(m)} {held}")
    if owner is not None:
        holder[t.address_] = owner.address_

# a cycle in the waiter -> owner graph is a deadlock
for start in holder:
    seen, p = [], start
    while p in holder and p not in seen:
        seen.append(p)
        p = holder[p]
    if p == start:
        names = [who(prog.object("struct thread", a)) for a in seen]
        print("deadlock: " + " -> ".join(names + names[:1]))
        break
else:
    if not holder:
        print("no thread waits on a mutex")

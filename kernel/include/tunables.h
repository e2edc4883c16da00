/* Every kernel tunable, one per line with what it controls.
 * Sections are owned by subsystems; keep each value next to its comment. */
#ifndef UNIK_TUNABLES_H
#define UNIK_TUNABLES_H

/* --- time and scheduling --- */
#define TIMER_HZ 1000                 /* PIT interrupts per second (the scheduler tick) */
#define SCHED_SLICE_TICKS 10          /* ticks a thread runs before preemption */
#define SCHED_BOOST_TICKS 10          /* wakeup-preemption ticks per service thread per rotation */
#define THREAD_STACK_DEFAULT 16384    /* bytes of stack for a thread unless asked */
#define THREAD_MAX 64                 /* most threads alive at once */

/* --- boot, traps and time --- */
#define IST_STACK_SIZE 8192           /* bytes of the double-fault (IST) stack */
#define PANIC_BT_MAX 32               /* most frames a panic backtrace prints */
#define TIME_CAL_DIV 200              /* calibrate the TSC over 1/TIME_CAL_DIV s of PIT time (boot cost vs accuracy) */
#define TIME_CAL_TRIES 4              /* bracketed PIT reads per calibration endpoint (the tightest wins) */
#define PVH_CMDLINE_MAX 1024          /* bytes of kernel command line kept */
#define PVH_MEMMAP_MAX 64             /* most firmware memory-map entries kept */

/* --- memory --- */
#define LOG_RING_SIZE 65536           /* bytes of kernel log kept in memory (power of 2) */
#define LOG_LINE_MAX 512              /* bytes of a log line log:::line passes (longer: its last bytes) */
#define HEAP_NCLASSES 9               /* size classes 16..4096; larger goes to pages */

/* --- probe channel --- */
#define CHAN_RX_BUFS 16               /* receive buffers posted on the probe port */
#define CHAN_RX_BUF_SIZE 2048         /* bytes per receive buffer */
#define CHAN_TX_BUF_SIZE 20480        /* bytes per transmit buffer (5 pages; chan/ checks a largest frame fits) */
#define CHAN_TX_BUFS 8                /* transmit ring: frames queued to the device at once (<= 32, <= CHAN_VQ_SIZE) */
#define CHAN_TX_WAIT_MS 100           /* a reply waiting for a full ring re-checks the host this often (safety) */
#define CHAN_STREAM_MS 20             /* LOG_DATA: push new log bytes at most this often while subscribed */
#define CHAN_TRACE_RATE_US 20000      /* TRACE_DATA: drain a session this often when TRACE_OPEN gives no switchrate */
#define CHAN_TRACE_MIN_RATE_US 1000   /* TRACE_DATA: the fastest switchrate honoured */
#define CHAN_TRACE_FRAMES 8           /* TRACE_DATA: most frames per session per drain (then requests are served) */
#define CHAN_BLOCK_TIMEOUT_MS 1000    /* interrupts: safety wake-up when idle (finds work only if one was lost) */
#define CHAN_IDLE_SPINS 64            /* polling: empty polls before sleeping */
#define CHAN_SLEEP_MS 1               /* polling: sleep between polls when idle; also handshake and full-tx waits */
#define CHAN_LINGER_US 2000           /* polling: keep polling this long after traffic before sleeping */
#define CHAN_CTRL_BUFS 32             /* control-queue receive buffers kept posted */
#define CHAN_CTRL_BUF_SIZE 256        /* bytes per control buffer (PORT_NAME carries the name) */
#define CHAN_VQ_SIZE 64               /* most descriptors per virtqueue (QueueNumMax may be lower) */
#define CHAN_HANDSHAKE_MS 2000        /* give up on the port handshake after this long */

/* --- probe engine (kernel/probe/) --- */
#define PROBE_SESSIONS_MAX 8          /* concurrent tracing sessions (unik trace consumers) */
#define PROBE_ENABLINGS_MAX 512       /* (probe, clause) enablings over every session */
#define PROBE_IDS_MAX 512             /* probe ids the engine can enable (synthetic + static) */
#define PROBE_SCRATCH_BYTES 8192      /* string scratch space of one clause firing */
#define PROBE_STAGE_BYTES 8192        /* records one clause firing may stage before commit */
#define PROBE_TUPLE_BYTES 2048        /* bytes of one tuple key (aggregation or assoc array) */
#define PROBE_KEYCACHE 128            /* per session: `@[probefunc] = count()` entries cached by probe id (power of 2) */
#define PROBE_ARENA_MIN 4096          /* smallest bufsize / aggsize / dynvarsize accepted */
#define PROBE_ARENA_MAX (8u << 20)    /* largest bufsize / aggsize / dynvarsize accepted */

/* --- network device (kernel/drivers/vnet.c) --- */
#define NET_RX_BUFS 32                /* receive buffers kept posted on the virtio-net rx queue */
#define NET_TX_BUFS 32                /* transmit ring: frames queued at once (<= 64); full = counted drop */
#define NET_BUF_SIZE 2048             /* bytes per rx/tx buffer (virtio_net_hdr + a 1514-byte frame) */
#define NET_VQ_SIZE 256               /* most descriptors per virtio-net queue */
#define NET_POLL_MS 1                 /* without an interrupt: poll the device this often */

/* --- lwIP glue (kernel/net/lwip/netif.c) --- */
#define NET_TX_RETRIES 50             /* linkoutput waits this often for room in a full transmit ring, then drops */
#define NET_TX_RETRY_MS 1             /* each wait: until a transmit completion frees a buffer, at most this */

/* --- watchdog (kernel/sched/watchdog.c) --- */
#define WATCHDOG_PERIOD_MS 250        /* how often the watchdog scans the threads */
#define WATCHDOG_MUTEX_MS 2000        /* a thread blocked on a mutex this long in an owner cycle = deadlock */
/* --- packet capture (kernel/net/capture.c, kernel/chan/capture.c: unik tcpdump) --- */
#define CAPTURE_MAX 8                 /* concurrent captures, each with its own filter */
#define CAPTURE_BUF_MIN 4096          /* smallest packet ring accepted (bytes) */
#define CAPTURE_BUF_MAX (4u << 20)    /* largest packet ring accepted (bytes) */
#define CAPTURE_SNAP_MAX 9216         /* most bytes kept of one frame, whatever the snaplen */
#define CAPTURE_RATE_US 10000         /* CAPTURE_DATA: drain a capture's ring this often by default */
#define CAPTURE_MIN_RATE_US 1000      /* CAPTURE_DATA: the fastest drain rate honoured */
#define CAPTURE_FRAMES 8              /* CAPTURE_DATA: most frames per capture per drain */

/* --- flight recorder (kernel/flight.c) --- */
#define FLIGHT_EVENTS 4096            /* events the ring keeps (power of 2; 40 bytes each) */
/* --- probe deadman (kernel/probe/deadman.c) --- */
#define DEADMAN_CPU_PCT 50            /* abort a session whose probe time exceeds this % of a window */
#define DEADMAN_WINDOW_MS 1000        /* that window, unless TRACE_DEADMAN sets one */
#define DEADMAN_MIN_MS 100            /* shortest drain timeout or CPU window TRACE_DEADMAN accepts */
#define DEADMAN_MAX_MS 3600000        /* longest drain timeout or CPU window TRACE_DEADMAN accepts */
/* --- profile provider (kernel/probe/profile.c, arch/apictimer.c) --- */
#define PROFILE_MIN_NS 50000          /* fastest profile-N accepted: 20 kHz (probes/probematch.py agrees) */
#define APICTIMER_CAL_NS 2000000      /* calibrate the local APIC timer over this long (first profile use) */
/* --- fbt: function-boundary probes (kernel/probe/fbt.c) --- */
#define FBT_SHADOW_DEPTH 48           /* return probes outstanding per thread (deeper: dropped) */
#define FBT_ENABLINGS_MAX 128         /* linked fbt enablings (each a run of functions) */

/* --- ping (net/lwip/ping.c, chan/netping.c) --- */
#define PING_SLOTS 64                 /* requests awaiting a reply at once (older ones time out) */
#define PING_EVENTS 64                /* events queued for the channel (more: counted drops) */
#define PING_DRAIN_MS 10              /* how often the channel sends a running ping's events */
#define PING_STOP_WAIT_MS 2000        /* how long NET_PING_STOP waits for the ping thread */
#define NET_PCB_OWNERS 8              /* raw/UDP PCBs whose owning thread netstat shows (pcbwatch.c) */
#endif

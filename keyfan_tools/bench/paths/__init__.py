"""The measured paths, each on the services' own pipelines with an injected codec.

Owner path (``owner.py``): a pre-filled SQS queue -> ``keyfan.owner.OwnerRunner``/``OwnerPipeline`` (validate,
seal, encrypt, publish with acks=all, delete) -> a benchmark topic. Records/s run from the start of the runner
to the last SQS delete.

Consumer path (``consumer.py``): the benchmark topic -> ``keyfan.consumer.RecordPipeline`` (headers, EDK key
ARNs, denial memory, decrypt, context and event-id checks, the department's handler, audit) one record at a
time, as the Faust agent does. Records/s run from the first fetched record after the warm-up to the last
outcome.

What differs from the real worker, on both codecs alike: aiokafka instead of Faust's producer/consumer
(``broker.py``), a dict instead of the Faust Table, and an audit sink that serialises the audit record but
keeps it. ``queues.py`` holds the owner's work queues (SQS, counted; or messages already received) and
``measure.py`` what both paths share: the measured window's hooks and the stall bound.
"""

"""PNG metadata, by direction of travel.

* ``chunks``: PNG text chunks themselves (keys, writing order, never a NUL, reading them back).
* ``invokeai``: the ``Dream`` command and InvokeAI 2.0's ``sd-metadata`` JSON, both ways.
* ``a1111``: AUTOMATIC1111's ``parameters`` text, both ways.

Nothing here imports the prompt-line parser: turning a PNG back into a command for the REPL is
``dreamline.repl.fetch``.
"""

"""Reading other tools' metadata into a dreamline Request, one module per tool.

Each reader returns a ``Fetched``: the Request closest to what the other tool ran, and notes (one
line each) naming everything that could not be carried over, so nothing is dropped silently.
A file that cannot be turned into a command at all raises ``MetadataError`` naming the reason.

* ``a1111``: AUTOMATIC1111 and its forks (Forge, reForge, SD.Next, ...): ``parameters`` text.
* ``comfyui``: ComfyUI ``prompt`` graphs, traced from the sampler node.
* ``invoke3``: InvokeAI 3.x and later (``invokeai_metadata``).
* ``jsonparams``: JSON in ``parameters`` (Fooocus, RuinedFooocus, SwarmUI, Hugging Face spaces)
  and Tensor.Art's ``generation_data``.
* ``novelai``: NovelAI's ``Comment`` JSON.
"""

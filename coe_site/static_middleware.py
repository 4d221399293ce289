"""WhiteNoise, made async-capable.

WhiteNoise's middleware is sync-only. Under ASGI one sync-only middleware makes Django run the chain around it in
its single thread-sensitive worker thread, with a thread hop each way on *every* request: that alone cost the
OpenAI-compatible endpoint ~15 ms per call and serialised concurrent requests. Here only requests for static files
touch WhiteNoise (in a thread); everything else passes straight through on the event loop.
"""
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.whitenoise = WhiteNoiseMiddleware(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _static_file(self, request):
        if self.whitenoise.autorefresh:
            return self.whitenoise.find_file(request.path_info)
        return self.whitenoise.files.get(request.path_info)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        return self.whitenoise(request)

    async def _acall(self, request):
        if request.path_info.startswith(self.whitenoise.static_prefix):
            static_file = await sync_to_async(self._static_file, thread_sensitive=False)(request)
            if static_file is not None:
                return await sync_to_async(self._serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)

    def _serve(self, static_file, request):
        """WhiteNoise's response, its body read here (static files are small) and handed over as an async iterator,
        which is what Django's ASGI handler streams without falling back to a thread per chunk."""
        response = self.whitenoise.serve(static_file, request)
        if response.streaming:
            chunks = list(response.streaming_content)
            if hasattr(response, "file_to_stream"):
                response.file_to_stream.close()
                response.file_to_stream = None

            async def body():
                for chunk in chunks:
                    yield chunk

            response.streaming_content = body()
        return response

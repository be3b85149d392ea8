"""Landing source records in a home: catalog rows, stored frames, cut crops.

``ingest``  records -> catalog rows + frames stored by content hash; support examples of added species
``crops``   cutting a box into a crop (context padding, validation), cached crop files
"""

"""The names ``app.workspace`` re-exports on first use (``import app.workspace`` stays light: no faiss,
no pipeline): name -> (module, attribute)."""

LAZY = {
    "run_demo": ("app.workspace.demo", "run_demo"),
    "demo_train_config": ("app.workspace.demo", "demo_train_config"),
    "DemoResult": ("app.workspace.demo", "DemoResult"),
    "SpeciesChange": ("app.workspace.species", "SpeciesChange"),
    "TaxaImport": ("app.workspace.taxa", "TaxaImport"),
    "TreePlace": ("app.workspace.taxa", "TreePlace"),
    # what an annotation tool sends, and what it changes
    "ToolAnnotation": ("app.workspace.annotation_tool", "ToolAnnotation"),
    "ToolBox": ("app.workspace.annotation_tool", "ToolBox"),
    "AnnotationChange": ("app.workspace.annotation_tool", "AnnotationChange"),
    # "species 0.93" / "unknown (score 0.41 < 0.62)": how a box is labelled
    "organism_label": ("app.workspace.frames.drawing", "label"),
    "CascadeResult": ("app.workspace.frames.cascade", "CascadeResult"),
    "FrameIdentification": ("app.workspace.frames.cascade", "FrameIdentification"),
    # result types, for the API's schemas
    "CropHit": ("index.catalog.lookup", "CropHit"),
    "SpeciesInfo": ("app.workspace.browse", "SpeciesInfo"),
    "WorkspaceStatus": ("app.workspace.browse", "WorkspaceStatus"),
}
